"""The HTTP client of a state workload: one :class:`Client` per client thread, talking to random
running nodes, retrying ambiguous attempts under one request id, and recording every operation as
a :class:`~ringrift_cluster.testing.checks.calls.Call` in its workload's history."""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Mapping

from .api_client import OPENER as _OPENER
from .checks.calls import NOT_APPLIED, OK, REFUSED, UNKNOWN, Attempt, Call


class Client:
    """HTTP to random running nodes, with retries under one request id."""

    def __init__(self, workload: Any, name: str, rng: random.Random) -> None:
        self.w = workload
        self.name = name
        self.rng = rng

    def call(self, op: str, method: str, path: str, args: dict[str, Any], *, url_args: Mapping[str, Any] | None = None,
             retry: bool = True) -> Call:
        """Send ``args`` as the body; the call records them with ``url_args`` (the path's parts)."""
        w = self.w
        rid = f"{self.name}-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:16]}"
        call = w._new_call(self.name, op, {**(url_args or {}), **args}, rid)
        budget = w.attempts if retry else 1
        for n in range(budget):
            node = self._pick()
            attempt = self._attempt(node, method, path, {**args, "request_id": rid})
            call.attempts.append(attempt)
            if attempt.outcome in (OK, REFUSED):
                break
            if n + 1 < budget:
                # Keep resolving even while stopping: by then the cluster is healed.
                time.sleep(min(2.0, w.backoff_s * (2 ** n)) * self.rng.uniform(0.7, 1.3))
        call.end = time.time()
        outcomes = [a.outcome for a in call.attempts]
        definite = next((a for a in reversed(call.attempts) if a.outcome in (OK, REFUSED)), None)
        if definite is not None:
            call.outcome = definite.outcome
        elif outcomes and all(o == NOT_APPLIED for o in outcomes):
            call.outcome = NOT_APPLIED
        else:
            call.outcome = UNKNOWN
        call.result = definite.body if definite is not None else None
        return call

    def _pick(self) -> str:
        nodes = [n for n, node in self.w.cluster.nodes.items() if node.running]  # type: ignore[union-attr]
        return self.rng.choice(nodes or list(self.w.cluster.nodes))  # type: ignore[union-attr]

    def _attempt(self, node: str, method: str, path: str, body: dict[str, Any]) -> Attempt:
        url = self.w.cluster.nodes[node].url + path  # type: ignore[union-attr]
        data = None if method == "GET" else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        if self.w.token:
            request.add_header("Authorization", f"Bearer {self.w.token}")
        start = time.time()
        status: int | None = None
        try:
            with _OPENER.open(request, timeout=self.w.request_timeout_s) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as e:
            status = e.code
            try:
                payload = e.read()
            except (OSError, http.client.HTTPException):
                payload = b""
        except (OSError, http.client.HTTPException) as e:  # timeout, refused, reset: may have happened
            reason = getattr(e, "reason", e)
            return Attempt(node, start, time.time(), None, UNKNOWN, type(reason).__name__)
        end = time.time()
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = None
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if status == 200 and isinstance(parsed, dict):
            outcome = OK
        elif status == 503 and error == "no_leader":
            outcome = NOT_APPLIED
        elif status is not None and 400 <= status < 500 and status != 408 and isinstance(parsed, dict) and error:
            outcome = REFUSED
        else:
            outcome = UNKNOWN
        detail = f"{status}" + (f" {error}" if error else "")
        if status == 503 and isinstance(parsed, dict) and parsed.get("message"):
            detail += f" ({str(parsed['message'])[:60]})"
        return Attempt(node, start, end, status, outcome, detail, parsed if outcome in (OK, REFUSED) else None)


__all__ = ["Client"]
