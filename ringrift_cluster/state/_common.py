"""Plumbing shared by the state machine's parts: result codes, limits, argument checks, copies."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Iterable

from ..errors import ClusterError, ConfigError

# Result codes (the "error" field of a refused command).
BAD_COMMAND = "bad_command"
UNKNOWN_OP = "unknown_op"
UNSUPPORTED_VERSION = "unsupported_version"
RID_CONFLICT = "rid_conflict"
NOT_FOUND = "not_found"
ALREADY_EXISTS = "already_exists"
INVALID_STATE = "invalid_state"
STALE_TOKEN = "stale_token"
WRONG_NODE = "wrong_node"
LOCK_HELD = "lock_held"
NOT_HELD = "not_held"
NOT_HOLDER = "not_holder"
STALE_FENCE = "stale_fence"
STALE_IMPORT = "stale_import"
INTERNAL = "internal"
ERROR_CODES = (
    BAD_COMMAND, UNKNOWN_OP, UNSUPPORTED_VERSION, RID_CONFLICT, NOT_FOUND, ALREADY_EXISTS,
    INVALID_STATE, STALE_TOKEN, WRONG_NODE, LOCK_HELD, NOT_HELD, NOT_HOLDER, STALE_FENCE, STALE_IMPORT,
    INTERNAL,
)

MAX_TIME = 1e12  # wall seconds (year ~33000); keeps clock + duration finite
MAX_DURATION = 1e8  # ~3 years
MAX_TEXT = 256
MAX_LONG_TEXT = 4096
MAX_LIST = 256
MAX_DEPTH = 32
MAX_VALUES = 10_000
MAX_INT = 2**63 - 1


class SnapshotError(ClusterError):
    """A snapshot could not be restored (wrong format or corrupt content)."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds on the replicated state. Every replica must use the same values (they travel in
    snapshots for that reason)."""

    dedup_max_entries: int = 10_000
    dedup_ttl_s: float = 900.0
    max_finished_work: int = 10_000
    finished_work_ttl_s: float = 86_400.0
    max_finished_jobs: int = 10_000
    finished_jobs_ttl_s: float = 86_400.0
    max_versions_per_model: int = 100

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int":
                if type(value) is not int or value < 1:
                    raise ConfigError(f"state.{f.name}", value, "an integer >= 1")
            else:
                if (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or not 0 < value <= MAX_DURATION
                ):
                    raise ConfigError(f"state.{f.name}", value, f"seconds in (0, {MAX_DURATION:g}]")
                object.__setattr__(self, f.name, float(value))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Core:
    """What every part shares: the replicated clock, the id counters and the limits."""

    # "change" counts applied state changes (every successful command but tick / work.expire): a
    # logical clock that a snapshot carries across mode switches, so the newer state wins.
    COUNTERS = ("work", "claim", "job", "model", "fence", "change")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.clock = 0.0
        self.counters = {name: 0 for name in self.COUNTERS}

    def next(self, name: str) -> int:
        value = self.counters[name] + 1
        self.counters[name] = value
        return value


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def refuse(code: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"ok": False, "error": code, "message": message, **fields}


def describe(value: object) -> str:
    """A short, always-safe description of a bad value for error messages."""
    if value is None or isinstance(value, (bool, int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = repr(str.__str__(value[:40]))
    else:
        return type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def clone(value: Any) -> Any:
    """Deep copy of plain data (dicts, lists, scalars), so callers never alias our state."""
    if type(value) is dict:
        return {k: clone(v) for k, v in value.items()}
    if type(value) is list:
        return [clone(v) for v in value]
    return value


class BadArg(Exception):
    """Internal only: one field is wrong; apply turns it into a ``bad_command`` result."""

    def __init__(self, field: str, what: str) -> None:
        super().__init__(f"{field}: {what}")
        self.field = field
        self.what = what


def _utf8(text: str, field: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadArg(field, "not valid UTF-8 text") from None
    return str.__str__(text)


def plain(value: Any, field: str) -> Any:
    """Validated deep copy of JSON data: str keys, finite numbers, bounded size and depth.

    Tuples become lists so that the copy equals its own JSON round trip.
    """
    budget = [MAX_VALUES]

    def walk(v: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise BadArg(field, f"more than {MAX_VALUES} values")
        if v is None or type(v) is bool:
            return v
        if isinstance(v, str):
            return _utf8(v, field)
        if isinstance(v, int) and not isinstance(v, bool):
            if not -MAX_INT - 1 <= v <= MAX_INT:
                raise BadArg(field, "integer out of the 64-bit range")
            return int(v)
        if isinstance(v, float):
            if not math.isfinite(v):
                raise BadArg(field, "numbers must be finite")
            return float(v)
        if depth >= MAX_DEPTH:
            raise BadArg(field, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    raise BadArg(field, f"key {describe(k)} is not a string")
                out[_utf8(k, field)] = walk(x, depth + 1)
            return out
        if isinstance(v, (list, tuple)):
            return [walk(x, depth + 1) for x in v]
        raise BadArg(field, f"{type(v).__name__} is not JSON data")

    return walk(value, 0)


_REQUIRED: Any = object()


class Args:
    """Typed, strict access to a command's ``args``: read every field, then call ``done()``."""

    def __init__(self, raw: dict[Any, Any], prefix: str = "args") -> None:
        self._raw = raw
        self._prefix = prefix
        self._used: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self._prefix}.{key}"

    def _take(self, key: str, default: Any) -> tuple[bool, Any]:
        """(present, value); a missing or None field yields the default or fails if required."""
        self._used.add(key)
        value = self._raw.get(key)
        if value is None:
            if default is _REQUIRED:
                raise BadArg(self.field(key), "missing")
            return False, default
        return True, value

    def _bad(self, key: str, expected: str, value: object) -> BadArg:
        return BadArg(self.field(key), f"expected {expected}, got {describe(value)}")

    def text(self, key: str, default: Any = _REQUIRED, *, max_len: int = MAX_TEXT,
             empty: bool = False) -> Any:
        present, v = self._take(key, default)
        if not present:
            return v
        if not isinstance(v, str) or (not v and not empty) or len(v) > max_len:
            what = "a non-empty string" if not empty else "a string"
            raise self._bad(key, f"{what} of at most {max_len} characters", v)
        return _utf8(v, self.field(key))

    def integer(self, key: str, default: Any = _REQUIRED, *, lo: int, hi: int) -> Any:
        present, v = self._take(key, default)
        if not present:
            return v
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self._bad(key, f"an integer in [{lo}, {hi}]", v)
        return int(v)

    def number(self, key: str, default: Any = _REQUIRED, *, lo: float, hi: float,
               lo_open: bool = False) -> Any:
        present, v = self._take(key, default)
        if not present:
            return v
        bad = isinstance(v, bool) or not isinstance(v, (int, float))
        if not bad:
            try:
                v = float(v)
            except OverflowError:
                bad = True
        if bad or not math.isfinite(v) or not (lo < v if lo_open else lo <= v) or v > hi:
            bracket = "(" if lo_open else "["
            raise self._bad(key, f"a number in {bracket}{lo:g}, {hi:g}]", v)
        return v

    def duration(self, key: str, default: Any = _REQUIRED) -> Any:
        return self.number(key, default, lo=0.0, hi=MAX_DURATION, lo_open=True)

    def flag(self, key: str, default: Any = _REQUIRED) -> Any:
        present, v = self._take(key, default)
        if present and type(v) is not bool:
            raise self._bad(key, "true or false", v)
        return v

    def texts(self, key: str, default: Any = _REQUIRED) -> Any:
        """A list of non-empty strings, returned sorted and without duplicates."""
        present, v = self._take(key, default)
        if not present:
            return v
        if not isinstance(v, (list, tuple)) or len(v) > MAX_LIST:
            raise self._bad(key, f"a list of at most {MAX_LIST} strings", v)
        for item in v:
            if not isinstance(item, str) or not item or len(item) > MAX_TEXT:
                raise self._bad(key, f"non-empty strings of at most {MAX_TEXT} characters", item)
        return sorted({_utf8(item, self.field(key)) for item in v})

    def mapping(self, key: str, default: Any = _REQUIRED) -> Any:
        present, v = self._take(key, default)
        if not present:
            return v
        if not isinstance(v, dict):
            raise self._bad(key, "an object", v)
        return plain(v, self.field(key))

    def opaque(self, key: str) -> Any:
        """A required field taken as is, for data that its consumer validates in full itself
        (a whole-state snapshot is far larger than the size limits meant for one command)."""
        return self._take(key, _REQUIRED)[1]

    def data(self, key: str, default: Any = None) -> Any:
        present, v = self._take(key, default)
        return plain(v, self.field(key)) if present else v

    def choice(self, key: str, choices: Iterable[str], default: Any = _REQUIRED) -> Any:
        present, v = self._take(key, default)
        options = tuple(choices)
        if present and (not isinstance(v, str) or v not in options):
            raise self._bad(key, "one of " + ", ".join(options), v)
        return str.__str__(v) if present else v

    def sub(self, key: str) -> "Args | None":
        """A nested object as its own Args (e.g. ``args.fence``), or None when absent."""
        present, v = self._take(key, None)
        if not present:
            return None
        if not isinstance(v, dict):
            raise self._bad(key, "an object", v)
        return Args(v, self.field(key))

    def done(self) -> None:
        for key in self._raw:
            if key not in self._used:
                raise BadArg(f"{self._prefix}.{describe(key).strip(chr(39))}", "unknown field")
