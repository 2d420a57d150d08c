"""The SWIM backend of membership (swim-p2p): ``SwimMembership`` and the bound its tests wait on.

Importing this package never imports swim-p2p; ``bridge.py`` does, on ``start``."""

from .membership import SwimMembership, failure_bound_s, swim_available

__all__ = ["SwimMembership", "failure_bound_s", "swim_available"]
