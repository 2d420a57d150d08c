"""ringrift-cluster: membership and consensus for peer-to-peer training clusters."""

__version__ = "0.1.0"
