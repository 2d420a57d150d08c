"""Outgoing HTTP to peers: one aiohttp session per node, our auth header, short timeouts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from .errors import ClusterError


class PeerUnreachable(ClusterError):
    """The peer did not answer (refused, timed out, reset) or answered with garbage."""


class PeerClient:
    def __init__(self, node_id: str, auth_token: str = "") -> None:
        self._headers = {"X-Node-ID": node_id}
        if auth_token:
            self._headers["Authorization"] = f"Bearer {auth_token}"
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # Connection reuse matters: a heartbeat round touches every peer every interval.
        self._session = aiohttp.ClientSession(
            headers=self._headers, connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, base_url: str, path: str, body: dict[str, Any], timeout: float,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """POST JSON; returns (status, parsed JSON body). Raises PeerUnreachable."""
        return await self._request("POST", base_url + path, body, timeout, headers)

    async def get(self, base_url: str, path: str, timeout: float) -> tuple[int, Any]:
        return await self._request("GET", base_url + path, None, timeout)

    async def _request(self, method: str, url: str, body: dict[str, Any] | None, timeout: float,
                       headers: dict[str, str] | None = None) -> tuple[int, Any]:
        if self._session is None:
            raise PeerUnreachable("client is not started")
        try:
            async with self._session.request(
                method, url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                text = await response.text()
                try:
                    return response.status, json.loads(text) if text else None
                except ValueError as e:
                    raise PeerUnreachable(f"{url}: answered {response.status} with a non-JSON body") from e
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise PeerUnreachable(f"{url}: {type(e).__name__}: {e}") from e
