"""Which ports are taken, and by whom: so a demo fails fast naming the port and its holder."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def port_taken(port: int, kind: int) -> bool:
    """True when ``port`` cannot be bound on 127.0.0.1 for ``kind`` (SOCK_STREAM or SOCK_DGRAM).

    TCP uses SO_REUSEADDR, as the nodes do, so a TIME_WAIT left by an earlier demo is no holder.
    """
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def listening(port: int) -> bool:
    """True when a TCP socket listens on ``port`` (always True where /proc/net is missing).

    Probing a port before anything listens can connect the probe to itself (its ephemeral port
    may be that very port) and block the node's bind: look first."""
    if not Path("/proc/net/tcp").exists():
        return True
    return bool(_socket_inodes(port, "tcp"))


def holder(port: int, kind: int) -> str:
    """``pid 123 (python -m http.server 8770)``, or why the holder cannot be named."""
    inodes = _socket_inodes(port, "tcp" if kind == socket.SOCK_STREAM else "udp")
    for pid, cmdline in _owners(inodes):
        return f"pid {pid} ({cmdline})"
    proto = "t" if kind == socket.SOCK_STREAM else "u"
    return f"a process this user cannot see (try: ss -{proto}lnp 'sport = :{port}')"


def _socket_inodes(port: int, proto: str) -> set[str]:
    """Inodes of the sockets bound to ``port`` (TCP: listening only), from /proc/net."""
    inodes: set[str] = set()
    for name in (proto, proto + "6"):
        try:
            lines = Path("/proc/net", name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            listening = proto == "udp" or fields[3] == "0A"
            if local_port == port and listening and fields[9] != "0":
                inodes.add(fields[9])
    return inodes


def _owners(inodes: set[str]) -> list[tuple[int, str]]:
    if not inodes:
        return []
    targets = {f"socket:[{inode}]" for inode in inodes}
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if any(_link(fd.path) in targets for fd in os.scandir(f"/proc/{entry.name}/fd")):
                raw = Path(f"/proc/{entry.name}/cmdline").read_bytes()
                cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
                found.append((int(entry.name), cmdline[:120] or "?"))
        except OSError:  # gone, or not ours to look at
            continue
    return found


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # the fd closed meanwhile
        return ""
