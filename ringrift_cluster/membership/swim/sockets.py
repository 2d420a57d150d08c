"""The SWIM port and the addresses on it: the exclusive bind (swim-p2p's own transport shares the
port with ``SO_REUSEPORT``, so a second process stole half the datagrams), and which addresses a
datagram may be sent to at all (``transport.py`` checks every one)."""

from __future__ import annotations

import errno
import socket
from typing import Any, Optional


def bind_exclusive(kind: str, host: str, port: int) -> socket.socket:
    """Bind the SWIM port without sharing it. Raises ``OSError`` (EADDRINUSE when taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if kind == "udp":
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
    else:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # SO_REUSEADDR only lets a restart bind over TIME_WAIT; Linux still refuses a second
            # listener on the same address. No SO_REUSEPORT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
    sock.setblocking(False)
    return sock


def port_in_use(error: OSError) -> bool:
    return error.errno in (errno.EADDRINUSE, errno.EACCES)


def parse_addr(value: Any) -> Optional[tuple[str, int]]:
    if not isinstance(value, str):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    dest = (host, int(port))
    return dest if valid_dest(dest) else None


_valid_cache: dict[Any, bool] = {}


def valid_dest(dest: Any) -> bool:
    """``_valid_dest`` remembered (it IDNA-encodes the host: a measurable cost per datagram)."""
    try:
        known = _valid_cache.get(dest)
    except TypeError:
        return False
    if known is None:
        known = _valid_dest(dest)
        if len(_valid_cache) > 8192:
            _valid_cache.clear()
        _valid_cache[dest] = known
    return known


def _valid_dest(dest: Any) -> bool:
    """An address the socket layer accepts. asyncio closes a datagram endpoint on any sendto error
    that is not an OSError (a port over 65535, a NUL or a lone surrogate in the host): one such
    address from a garbage datagram would leave the node deaf for good."""
    try:
        host, port = dest
    except (TypeError, ValueError):
        return False
    if not isinstance(host, str) or not host or len(host) > 253 or "\x00" in host:
        return False
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return False
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


__all__ = ["bind_exclusive", "parse_addr", "port_in_use", "valid_dest"]
