"""The pure, deterministic replicated state machine and the builders of its commands."""

from . import commands
from ._common import ERROR_CODES, Limits, SnapshotError
from .machine import OPS, VERSION, StateMachine

__all__ = ["ERROR_CODES", "OPS", "VERSION", "Limits", "SnapshotError", "StateMachine", "commands"]
