"""What every route module shares: JSON body parsing with reasons, replies."""

from __future__ import annotations

import importlib.util
import json
import math
from functools import lru_cache
from typing import Any, Mapping

from aiohttp import web

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", dict: "an object", list: "a list"}


@lru_cache(maxsize=None)
def importable(module: str) -> bool:
    """Whether an engine's library is installed here (the status documents say so)."""
    return importlib.util.find_spec(module) is not None


def bad_request(reason: str, status: int = 400) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 409: web.HTTPConflict, 413: web.HTTPRequestEntityTooLarge}.get(status, web.HTTPBadRequest)
    if cls is web.HTTPRequestEntityTooLarge:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=json.dumps({"error": reason}),
                                             content_type="application/json")
    return cls(text=json.dumps({"error": reason}), content_type="application/json")


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx that says what is wrong with it."""
    try:
        raw = await request.read()  # raises 413 past the app's client_max_size
    except web.RequestPayloadError as e:  # a Content-Encoding that does not decode
        raise bad_request(f"body: could not be read ({e})") from None
    if not raw:
        raise bad_request("body: expected a JSON object, got an empty body")
    try:
        data = json.loads(raw, parse_constant=_non_finite, parse_float=_finite_float)
    except RecursionError:  # [[[[...]]]] deeper than the interpreter's recursion limit
        raise bad_request("body: malformed JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"body: malformed JSON ({e})") from None
    if not isinstance(data, dict):
        raise bad_request(f"body: expected a JSON object, got {type(data).__name__}")
    return data


def _non_finite(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's parser takes them; nothing downstream can)."""
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def require(data: Mapping[str, Any], fields: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """Pick required fields with their types; a 400 names the first missing or mistyped one."""
    out: dict[str, Any] = {}
    for name, kind in fields.items():
        if name not in data:
            raise bad_request(f"{name}: required field missing")
        value = data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise bad_request(f"{name}: expected {expected}, got {value!r}"[:300])
        out[name] = value
    return out


def reply(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)
