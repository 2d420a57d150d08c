"""JSON over HTTP to a node's API, as the harness speaks it: no proxies (test clusters live on
loopback or a private bridge), and a node that does not answer is an answer, not an exception."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_json(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """GET a JSON endpoint; None when it does not answer or answers with something else."""
    try:
        with OPENER.open(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def post_json(url: str, body: Any, timeout: float = 2.0, token: str | None = None,
              raw: bytes | None = None) -> tuple[int, Any]:
    """POST ``body`` as JSON (or ``raw`` bytes as they are); returns (status, parsed body or text).
    A connection failure raises, as urllib does: the caller decides what a lost request means."""
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with OPENER.open(request, timeout=timeout) as response:
            payload, status = response.read(), response.status
    except urllib.error.HTTPError as e:
        payload, status = e.read(), e.code
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


class JsonClient:
    """One kept-alive HTTP connection sending JSON (``http.client``, no opener machinery): the
    benchmarks' client, so that a timed call pays no TCP handshake and every system measured pays
    the same, small client cost."""

    def __init__(self, url: str, token: str = "", timeout: float = 5.0) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        """(status, parsed body); (0, None) when nothing answered in time."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
            elif self.conn.sock is not None:
                self.conn.sock.settimeout(timeout or self.timeout)
            self.conn.request(method, path, None if body is None else json.dumps(body), self.headers)
            response = self.conn.getresponse()
            payload = response.read()
            try:
                return response.status, json.loads(payload or b"{}")
            except ValueError:
                return response.status, None
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
