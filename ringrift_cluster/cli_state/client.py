"""JSON over HTTP to one node for the state verbs: every failure is a ``CliError`` with the exit
code that says what kind (``EXIT_*``), and the token comes from the flags or the environment."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8770"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_REFUSED, EXIT_UNAUTHORIZED, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4, 5


class CliError(Exception):
    """A failure to report as one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE, answer: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.answer = answer  # the node's JSON answer, when there was one


class Client:
    """JSON over HTTP to one node; every failure becomes a CliError with the right exit code."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CliError(f"--url: expected http://HOST:PORT, got {url!r}", EXIT_USAGE)
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self.call("GET", path, query=query)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             query: dict[str, Any] | None = None) -> dict[str, Any]:
        target = self.url + urllib.parse.quote(path, safe="/")
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            target += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(target, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise CliError(f"cannot reach {self.url}: {reason}", EXIT_FAILURE) from None
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {"error": raw.decode(errors="replace")[:200]}
        if not isinstance(answer, dict):
            answer = {"value": answer}
        if status >= 400:
            error = _http_error(method, path, status, answer)
            error.answer = answer
            raise error
        return answer


def _http_error(method: str, path: str, status: int, answer: dict[str, Any]) -> CliError:
    reason = answer.get("message") or answer.get("error") or f"HTTP {status}"
    what = f"{method} {path}"
    if status == 401:
        return CliError(f"{what}: unauthorized (401): pass --token, --token-file or set "
                        "RINGRIFT_CLUSTER_AUTH_TOKEN", EXIT_UNAUTHORIZED)
    if status == 503:
        leader = answer.get("leader")
        hint = f" (leader: {leader})" if leader else ""
        outcome = " outcome unknown: retry with the same --request-id;" if answer.get("outcome") == "unknown" else ""
        kind = "timeout" if answer.get("error") == "timeout" else "no leader"
        return CliError(f"{what}: {kind} (503):{outcome} {reason}{hint}", EXIT_UNAVAILABLE)
    if status == 400:
        return CliError(f"{what}: bad request (400): {reason}", EXIT_USAGE)
    if status == 404:
        return CliError(f"{what}: not found (404): {reason}", EXIT_REFUSED)
    if status == 409:
        error = answer.get("error")
        return CliError(f"{what}: refused (409{', ' + error if error else ''}): {reason}", EXIT_REFUSED)
    return CliError(f"{what}: HTTP {status}: {reason}", EXIT_FAILURE)


def resolve_token(args: argparse.Namespace, env: Any = os.environ) -> str | None:
    """--token, else --token-file, else $RINGRIFT_CLUSTER_AUTH_TOKEN, else
    $RINGRIFT_CLUSTER_AUTH_TOKEN_FILE; None when none is given (reads need none)."""
    if args.token:
        return str(args.token)
    path, label = args.token_file, "--token-file"
    if not path and env.get("RINGRIFT_CLUSTER_AUTH_TOKEN"):
        return str(env["RINGRIFT_CLUSTER_AUTH_TOKEN"])
    if not path:
        path, label = env.get("RINGRIFT_CLUSTER_AUTH_TOKEN_FILE"), "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE"
    if not path:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"{label}: cannot read {path}: {getattr(e, 'strerror', None) or e}", EXIT_USAGE) from None
    if not value:
        raise CliError(f"{label}: {path} is empty", EXIT_USAGE)
    return value
