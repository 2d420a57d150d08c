"""Host commands (``ip``, ``nft``) and the registry of namespace resources, so that a later run
sweeps what a crashed one left behind (:func:`sweep_stale`)."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Callable, Generic, Iterator, Sequence, TypeVar

REGISTRY = Path(os.environ.get("RINGRIFT_FAULTS_REGISTRY", "/run/ringrift-faults"))
TABLE = "rrfault"
T = TypeVar("T")
API_PORT, SWIM_PORT, RAFT_PORT = 8770, 7947, 4321
# The tag of one cluster's resources; the suffix says which resource it is.
_TAG_RE = re.compile(r"^(rr[0-9a-z]{5}[0-9a-z])(br|[h][0-9a-z]{2}|-[a-z0-9][a-z0-9_.-]*)$")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class NetnsError(RuntimeError):
    """A namespace, link or rule command failed; the message has the command and its stderr."""


# --------------------------------------------------------------------------------------------
# Commands


def _run(cmd: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), input=input, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(["ip", *args], check=check)


def netns_unavailable_reason() -> str | None:
    """Why namespace clusters cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) for network namespaces"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} command"
    name = f"rrprobe{os.getpid()}"
    try:
        _ip("netns", "add", name)
        _run(["ip", "netns", "exec", name, "nft", "list", "tables"])
    except (NetnsError, OSError, subprocess.TimeoutExpired) as e:
        return f"cannot create a network namespace with nftables: {e}"
    finally:
        _ip("netns", "del", name, check=False)
    return None


def _b36(value: int, width: int) -> str:
    out = ""
    for _ in range(width):
        value, digit = divmod(value, 36)
        out = _B36[digit] + out
    return out


def _start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (/proc/<pid>/stat field 22), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


@contextlib.contextmanager
def _registry_lock() -> Iterator[None]:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    with open(REGISTRY / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _owner_alive(tag: str) -> bool:
    """Whether the process that created ``tag`` still runs (pid and start time both match)."""
    pid = int(tag[2:7], 36)
    record = REGISTRY / f"{tag}.json"
    started = _start_time(pid)
    if started is None:
        return False
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return True  # a live pid and no record: not provably ours to remove
    return data.get("pid") == pid and data.get("start_time") == started


def _existing() -> tuple[list[str], list[str]]:
    """(namespace names, link names) in the root namespace right now."""
    result = _ip("-j", "netns", "list", check=False)
    try:
        namespaces = [entry["name"] for entry in json.loads(result.stdout or "[]")]
    except ValueError:
        namespaces = []
    links = [entry["ifname"] for entry in json.loads(_ip("-j", "link", "show").stdout or "[]")]
    return namespaces, links


def _kill_namespace_processes(ns: str) -> None:
    result = _ip("netns", "pids", ns, check=False)
    for line in result.stdout.split():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(line), signal.SIGKILL)


def sweep_stale() -> list[str]:
    """Remove ``rr*`` resources (processes, namespaces, links, records) of runs whose owner
    process is gone. Resources of live runs, this one included, are left alone."""
    removed: list[str] = []
    with _registry_lock():
        namespaces, links = _existing()
        records = [p.stem for p in REGISTRY.glob("rr*.json")]
        tags: dict[str, list[tuple[str, str]]] = {}
        for kind, names in (("netns", namespaces), ("link", links)):
            for name in names:
                match = _TAG_RE.match(name.split("@")[0])
                if match:
                    tags.setdefault(match.group(1), []).append((kind, name))
        for tag in records:
            tags.setdefault(tag, [])
        for tag, resources in tags.items():
            if _owner_alive(tag):
                continue
            for kind, name in sorted(resources, key=lambda r: r[0] != "netns"):
                if kind == "netns":
                    _kill_namespace_processes(name)
            for kind, name in resources:
                if kind == "link":
                    _ip("link", "del", name, check=False)
                    removed.append(f"link {name}")
            for kind, name in resources:
                if kind == "netns":
                    _ip("netns", "del", name, check=False)
                    removed.append(f"netns {name}")
            with contextlib.suppress(FileNotFoundError):
                (REGISTRY / f"{tag}.json").unlink()
                removed.append(f"record {tag}")
    return removed


def _used_networks() -> list[ipaddress.IPv4Network]:
    used = []
    for entry in json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = entry.get("dst", "")
        if dst and dst != "default" and not dst.startswith(("broadcast", "local")):
            with contextlib.suppress(ValueError):
                used.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    for entry in json.loads(_ip("-j", "-4", "addr", "show").stdout or "[]"):
        for info in entry.get("addr_info", []):
            with contextlib.suppress(ValueError, KeyError):
                used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return used


class AtExit(Generic[T]):
    """What is still up at interpreter exit (after an error or a KeyboardInterrupt) is torn down
    then, by ``close``; a SIGKILLed runner leaves it to the next run's :func:`sweep_stale`."""

    def __init__(self, close: Callable[[T], None]) -> None:
        self._close = close
        self._live: set[T] = set()
        self._lock = threading.Lock()
        atexit.register(self.run)

    def add(self, item: T) -> None:
        with self._lock:
            self._live.add(item)

    def discard(self, item: T) -> None:
        with self._lock:
            self._live.discard(item)

    def run(self) -> None:
        with self._lock:
            live = list(self._live)
        for item in live:
            with contextlib.suppress(Exception):
                self._close(item)


__all__ = ["API_PORT", "RAFT_PORT", "REGISTRY", "SWIM_PORT", "TABLE", "AtExit", "NetnsError",
           "netns_unavailable_reason", "sweep_stale"]
