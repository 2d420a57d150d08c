"""The one error hierarchy of ringrift-cluster.

Third-party exceptions are translated at the backend edge (``raise ... from e``); callers only
ever need to catch ``ClusterError`` or one of its children.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(ClusterError):
    """Invalid configuration: names the key path, the bad value and what was expected."""

    def __init__(self, key: str, value: object, expected: str, hint: str = "") -> None:
        self.key = key
        self.value = value
        self.expected = expected
        self.hint = hint
        message = f"{key}: got {value!r}, expected {expected}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class BackendUnavailable(ClusterError):
    """A backend cannot run here (engine missing, port in use, disabled)."""


class NoLeader(ClusterError):
    """No leader is known right now; retry later."""


class NotLeader(ClusterError):
    """This node is not the leader; ``leader`` names the one that is, when known."""

    def __init__(self, leader: str | None, message: str = "") -> None:
        self.leader = leader
        super().__init__(message or f"not the leader (leader: {leader or 'unknown'})")


class ClusterTimeout(ClusterError):
    """The operation did not complete in time; it may or may not have taken effect."""


class CommandRejected(ClusterError):
    """The state machine refused a command (stale token, unknown item, ...)."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        super().__init__(message or code)
