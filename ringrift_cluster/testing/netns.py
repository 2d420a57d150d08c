"""Multi-host clusters on one Linux machine: one network namespace per node, real packet drops.

Each node is a Linux network namespace with its own address in a private /24, joined to a bridge
in the root namespace by a veth pair, and runs a real ``python -m ringrift_cluster run`` process
(``ip netns exec <ns> ...``). The test process reaches every node through the bridge, which has
an address in the same subnet. Every host uses the same ports (8770 API, 7947 SWIM, 4321 Raft).

Network faults are nftables rules in a table ``inet rrfault`` inside the *receiving* namespace
(an ``input`` hook matching the sender's address): a packet from A to B leaves A, crosses the
bridge and vanishes at B, exactly like a lossy or cut wire. There is no FIN, no RST and no ICMP,
and the sender gets no local error. Dropping in the sender's ``output`` hook instead would make
the kernel return EPERM to UDP senders (SWIM) at once: a local error, not a lost packet. The
observer (the bridge address) is never matched, so the test can always read every node's view.

Names: every resource of one cluster carries the tag ``rr<pid base36, 5><seq>``: the bridge
``<tag>br``, host-side veths ``<tag>h<i>``, namespaces ``<tag>-<node id>``. The owner's pid and
start time are recorded in ``/run/ringrift-faults/<tag>.json`` before anything is created, so a
later run can tell leftovers of a crashed run (owner gone) from a parallel live run and sweep them
(:func:`sweep_stale`, called whenever a cluster is created).

Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN), ``ip`` (iproute2) and ``nft``. Where namespaces are
not available, :class:`~ringrift_cluster.testing.LocalCluster` covers the process faults
(SIGKILL / SIGTERM / SIGSTOP / restart) on loopback, but not network faults.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import yaml

from .local_cluster import LocalCluster, LocalNode

REGISTRY = Path(os.environ.get("RINGRIFT_FAULTS_REGISTRY", "/run/ringrift-faults"))
TABLE = "rrfault"
API_PORT, SWIM_PORT, RAFT_PORT = 8770, 7947, 4321
# The tag of one cluster's resources; the suffix says which resource it is.
_TAG_RE = re.compile(r"^(rr[0-9a-z]{5}[0-9a-z])(br|[h][0-9a-z]{2}|-[a-z0-9][a-z0-9_.-]*)$")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
# Where subnets are taken from: 10.200.0.0/24 .. 10.249.255.0/24.
_SUBNET_FIRST, _SUBNET_COUNT = (10 << 24) | (200 << 16), 50 * 256
_seq_lock = threading.Lock()
_seq = 0
# Proxy settings in the environment must never route the observer's requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_SETPRIV = shutil.which("setpriv") if subprocess.run(
    ["sh", "-c", "setpriv --help 2>&1 | grep -q pdeathsig"], capture_output=True).returncode == 0 else None


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


# --------------------------------------------------------------------------------------------
# The network: bridge, namespaces, veths, fault rules. No processes.


class NetnsNetwork:
    """A bridge and one namespace per host, plus the drop / loss rules between them.

    Faults are kept as a model (which directed pairs are cut, which lose a percentage of
    packets) and every change re-renders the rule table of the receiving namespaces atomically.
    """

    def __init__(self, hosts: Sequence[str]) -> None:
        global _seq
        if not 1 <= len(hosts) <= 250:
            raise ValueError("a namespace network holds 1 to 250 hosts")
        with _seq_lock:
            seq, _seq = _seq, _seq + 1
        self.tag = f"rr{_b36(os.getpid(), 5)}{_b36(seq, 1)}"
        self.hosts = list(hosts)
        self.bridge = f"{self.tag}br"
        self.namespaces = {h: f"{self.tag}-{h}" for h in self.hosts}
        self.host_links = {h: f"{self.tag}h{_b36(i, 2)}" for i, h in enumerate(self.hosts)}
        self.subnet: ipaddress.IPv4Network | None = None
        self.addresses: dict[str, str] = {}
        self.gateway = ""
        self._blocked: set[tuple[str, str]] = set()  # (src, dst): src's packets never reach dst
        self._loss: dict[tuple[str, str], int] = {}  # (src, dst): percent of src's packets lost at dst
        self._rendered: dict[str, str] = {h: "" for h in self.hosts}
        self._lock = threading.RLock()
        self._created = False
        self._destroyed = False

    # -- Lifecycle -----------------------------------------------------------------------------

    def create(self) -> "NetnsNetwork":
        """Sweep stale leftovers, then build the bridge and the namespaces (undone on failure)."""
        reason = None if shutil.which("nft") and shutil.which("ip") and os.geteuid() == 0 else netns_unavailable_reason()
        if reason:
            raise NetnsError(f"namespace clusters unavailable: {reason}")
        sweep_stale()
        self._created = True
        _finalizers.add(self)
        try:
            with _registry_lock():
                (REGISTRY / f"{self.tag}.json").write_text(json.dumps({
                    "pid": os.getpid(), "start_time": _start_time(os.getpid()), "created": time.time(),
                    "bridge": self.bridge, "namespaces": list(self.namespaces.values()),
                }))
                self.subnet = self._pick_subnet()
                hosts = list(self.subnet.hosts())
                self.gateway = str(hosts[0])
                self.addresses = {h: str(hosts[i + 1]) for i, h in enumerate(self.hosts)}
                _ip("link", "add", self.bridge, "type", "bridge")
                _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
                _ip("link", "set", self.bridge, "up")
            for i, host in enumerate(self.hosts):
                ns, outside, inside = self.namespaces[host], self.host_links[host], f"{self.tag}n{_b36(i, 2)}"
                _ip("netns", "add", ns)
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                _ip("link", "set", inside, "netns", ns)
                _ip("-n", ns, "link", "set", inside, "name", "eth0")
                _ip("-n", ns, "addr", "add", f"{self.addresses[host]}/{self.subnet.prefixlen}", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("link", "set", outside, "master", self.bridge)
                _ip("link", "set", outside, "up")
        except BaseException:
            self.destroy()
            raise
        return self

    def _pick_subnet(self) -> ipaddress.IPv4Network:
        used = _used_networks()
        start = (os.getpid() * 7919 + secrets.randbelow(64)) % _SUBNET_COUNT
        for k in range(_SUBNET_COUNT):
            candidate = ipaddress.IPv4Network((_SUBNET_FIRST + ((start + k) % _SUBNET_COUNT) * 256, 24))
            if not any(candidate.overlaps(u) for u in used):
                return candidate
        raise NetnsError("no free /24 left in 10.200.0.0/16-10.249.0.0/16")

    def destroy(self) -> None:
        """Remove everything this network created; safe to call twice and after a partial create."""
        with self._lock:
            if self._destroyed or not self._created:
                return
            self._destroyed = True
        for ns in self.namespaces.values():
            _kill_namespace_processes(ns)
        for link in self.host_links.values():
            _ip("link", "del", link, check=False)
        _ip("link", "del", self.bridge, check=False)
        for ns in self.namespaces.values():
            _ip("netns", "del", ns, check=False)
        with contextlib.suppress(OSError):
            (REGISTRY / f"{self.tag}.json").unlink()
        _finalizers.discard(self)

    def resources(self) -> list[str]:
        """This network's resources that exist right now (for cleanup checks)."""
        namespaces, links = _existing()
        mine = set(self.namespaces.values()) | set(self.host_links.values()) | {self.bridge}
        found = [f"netns {n}" for n in namespaces if n in mine]
        found += [f"link {n.split('@')[0]}" for n in links if n.split("@")[0] in mine]
        if (REGISTRY / f"{self.tag}.json").exists():
            found.append(f"record {self.tag}")
        return found

    def exec_command(self, host: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[host], *argv]

    # -- Faults --------------------------------------------------------------------------------

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Cut every pair of hosts in different groups, both ways; replaces earlier cuts.
        Hosts named in no group form one more group together."""
        sets = [set(g) for g in groups]
        named = set().union(*sets) if sets else set()
        unknown = named - set(self.hosts)
        if unknown:
            raise ValueError(f"unknown hosts {sorted(unknown)}")
        rest = set(self.hosts) - named
        if rest:
            sets.append(rest)
        side = {h: i for i, group in enumerate(sets) for h in group}
        if sum(len(g) for g in sets) != len(side):
            raise ValueError("a host is in two groups")
        self._apply(blocked={(a, b) for a in self.hosts for b in self.hosts if side[a] != side[b]})

    def isolate(self, host: str) -> None:
        """Cut ``host`` from every other host, both ways (added to the cuts in force)."""
        self._check(host)
        self._apply(blocked=self._blocked | {p for o in self.hosts if o != host for p in ((host, o), (o, host))})

    def drop(self, src: str, dst: str) -> None:
        """One way: packets from ``src`` to ``dst`` are lost; ``dst`` to ``src`` still flows."""
        self._check(src, dst)
        if src == dst:
            raise ValueError("a host never drops its own packets")
        self._apply(blocked=self._blocked | {(src, dst)})

    def loss(self, host: str, percent: float, direction: str = "both") -> None:
        """Lose ``percent`` of the packets on ``host``'s link: those it sends (``out``), those
        it receives (``in``) or both. The loss of a directed pair is the last value set."""
        self._check(host)
        pairs = self._directed(host, direction)
        self._apply(loss={**self._loss, **{p: _percent(percent) for p in pairs}})

    def loss_all(self, percent: float) -> None:
        """Every directed host-to-host path loses ``percent`` of its packets."""
        p = _percent(percent)
        self._apply(loss={(a, b): p for a in self.hosts for b in self.hosts if a != b})

    def heal(self) -> None:
        """Remove every cut, one-way drop and loss."""
        self._apply(blocked=set(), loss={})

    def faults(self) -> dict[str, Any]:
        """The network faults in force: cut directed pairs and lossy ones."""
        with self._lock:
            return {"blocked": sorted(self._blocked), "loss": {f"{a}->{b}": p for (a, b), p in sorted(self._loss.items())}}

    def rules(self, host: str) -> str:
        """The rule table in force in ``host``'s namespace, as nft lists it."""
        return _run(self.exec_command(host, ["nft", "list", "table", "inet", TABLE]), check=False).stdout

    def _directed(self, host: str, direction: str) -> list[tuple[str, str]]:
        others = [o for o in self.hosts if o != host]
        if direction == "out":
            return [(host, o) for o in others]
        if direction == "in":
            return [(o, host) for o in others]
        if direction == "both":
            return [(host, o) for o in others] + [(o, host) for o in others]
        raise ValueError(f"direction {direction!r}: expected 'in', 'out' or 'both'")

    def _check(self, *hosts: str) -> None:
        for host in hosts:
            if host not in self.namespaces:
                raise ValueError(f"unknown host {host!r}")

    def _apply(self, *, blocked: set[tuple[str, str]] | None = None, loss: dict[tuple[str, str], int] | None = None) -> None:
        with self._lock:
            if self._destroyed or not self._created:
                raise NetnsError("the network is not up")
            if blocked is not None:
                self._blocked = set(blocked)
            if loss is not None:
                self._loss = {p: v for p, v in loss.items() if v > 0}
            for host in self.hosts:
                script = self._render(host)
                if script != self._rendered[host]:
                    self._load(host, script)
                    self._rendered[host] = script

    def _render(self, dst: str) -> str:
        """The ``input`` chain of ``dst``: drop what cut senders send, lose some of the rest."""
        cut = {self.addresses[a] for (a, b) in self._blocked if b == dst}
        cut |= {self.addresses[a] for (a, b), percent in self._loss.items() if b == dst and percent >= 100}
        by_percent: dict[int, list[str]] = {}
        for (a, b), percent in self._loss.items():
            if b == dst and self.addresses[a] not in cut:
                by_percent.setdefault(percent, []).append(self.addresses[a])
        rules = []
        if cut:
            rules.append(f"ip saddr {{ {', '.join(sorted(cut))} }} drop")
        for percent, sources in sorted(by_percent.items()):
            rules.append(f"ip saddr {{ {', '.join(sorted(sources))} }} numgen random mod 100 < {percent} drop")
        if not rules:
            return ""
        body = "\n".join(f"    {r}" for r in rules)
        return (f"table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority -5; policy accept;\n"
                f"{body}\n  }}\n}}\n")

    def _load(self, host: str, script: str) -> None:
        # One transaction: replace the whole table (or remove it when no rule is left).
        text = f"add table inet {TABLE}\ndelete table inet {TABLE}\n{script}"
        _run(self.exec_command(host, ["nft", "-f", "-"]), input=text)


def _percent(value: float) -> int:
    p = int(round(value))
    if not 0 <= p <= 100:
        raise ValueError(f"loss percent {value}: expected 0..100")
    return p


class _Finalizers:
    """Networks still up at interpreter exit are destroyed then (KeyboardInterrupt, errors)."""

    def __init__(self) -> None:
        self._live: set[NetnsNetwork] = set()
        self._lock = threading.Lock()
        atexit.register(self.run)

    def add(self, network: NetnsNetwork) -> None:
        with self._lock:
            self._live.add(network)

    def discard(self, network: NetnsNetwork) -> None:
        with self._lock:
            self._live.discard(network)

    def run(self) -> None:
        with self._lock:
            live = list(self._live)
        for network in live:
            with contextlib.suppress(Exception):
                network.destroy()


_finalizers = _Finalizers()


# --------------------------------------------------------------------------------------------
# The cluster: LocalCluster's API over namespace hosts.


@dataclass
class NetnsNode(LocalNode):
    address: str = ""
    namespace: str = ""

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.api_port}"


class NetnsCluster(LocalCluster):
    """N real node processes, each on its own network namespace host, plus fault verbs.

    Observing and process control read exactly like :class:`LocalCluster` (start, start_all,
    kill, stop, signal, status, statuses, agreed_leader, wait_for_leader, wait_converged, logs,
    shutdown, context manager). ``settings`` go verbatim into the YAML's ``ringrift_cluster:``
    section (``api.bind_host`` defaults to 0.0.0.0 so each node binds its namespace address) and
    ``env`` into every node's environment, so any membership / consensus mode runs unchanged.

    The network is built by the constructor and torn down by :meth:`shutdown` (also at
    interpreter exit, and swept by the next run if this process dies by SIGKILL).
    """

    def __init__(
        self,
        n: int,
        root: str | os.PathLike[str],
        *,
        preset: str = "local",
        settings: Mapping[str, Any] | None = None,
        voters: Iterable[str] | None = None,
        env: Mapping[str, str] | None = None,
        prefix: str = "node",
        auth_token: str = "",
        ports: tuple[int, int, int] = (API_PORT, SWIM_PORT, RAFT_PORT),
    ) -> None:
        merged = dict(settings or {})
        merged["api"] = {"bind_host": "0.0.0.0", **dict(merged.get("api") or {})}
        env = dict(env or {})
        # Raft refuses a non-loopback bind without a password; every host here is non-loopback.
        if "RINGRIFT_RAFT_PASSWORD" not in os.environ and "RINGRIFT_RAFT_PASSWORD_FILE" not in os.environ:
            env.setdefault("RINGRIFT_RAFT_PASSWORD", secrets.token_hex(16))
        super().__init__(n, root, base_port=ports[0], preset=preset, settings=merged, voters=voters,
                         env=env, prefix=prefix, auth_token=auth_token)
        self.network = NetnsNetwork(list(self.nodes)).create()
        api_port, swim_port, raft_port = ports
        self.nodes = {
            node_id: NetnsNode(node_id=node_id, api_port=api_port, swim_port=swim_port, raft_port=raft_port,
                               data_dir=old.data_dir, log_path=old.log_path,
                               address=self.network.addresses[node_id], namespace=self.network.namespaces[node_id])
            for node_id, old in self.nodes.items()
        }
        self._closed = False

    # -- Config and processes ------------------------------------------------------------------

    def write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        document = {
            "hosts": {
                node.node_id: {"p2p_host": node.address, "p2p_port": node.api_port, "swim_port": node.swim_port,
                               "raft_port": node.raft_port, "role": "worker"}
                for node in self.nodes.values()  # type: ignore[misc]
            },
            "p2p_voters": self.voters,
            "ringrift_cluster": self.settings,
        }
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        return self.config_path

    def command(self, node_id: str) -> list[str]:
        """``ip netns exec <ns> python -m ringrift_cluster run ...``, under ``setpriv --pdeathsig
        KILL`` where available: a node dies with the thread that started it, so a runner killed
        by SIGKILL leaves no node process behind (its namespaces are swept by the next run)."""
        argv = self.network.exec_command(node_id, super().command(node_id))
        return [_SETPRIV, "--pdeathsig", "KILL", *argv] if _SETPRIV else argv

    def start(self, node_id: str) -> LocalNode:
        if self._closed:
            raise RuntimeError("this cluster was shut down")
        return super().start(node_id)

    def pause(self, node_id: str) -> None:
        """SIGSTOP: the process freezes (a long GC pause, a stalled VM); sockets stay open."""
        self.signal(node_id, signal.SIGSTOP)

    def resume(self, node_id: str) -> None:
        """SIGCONT after :meth:`pause`."""
        self.signal(node_id, signal.SIGCONT)

    def kill_many(self, node_ids: Iterable[str]) -> None:
        """SIGKILL several nodes at the same instant (a rack losing power), then reap them."""
        ids = [n for n in node_ids if self.nodes[n].running]
        for node_id in ids:
            self.signal(node_id, signal.SIGKILL)
        for node_id in ids:
            self.nodes[node_id].proc.wait(timeout=10)  # type: ignore[union-attr]

    def restart(self, node_id: str, graceful: bool = False) -> None:
        """SIGKILL (or SIGTERM when ``graceful``) and start again with the same data dir."""
        if self.nodes[node_id].running:
            if graceful:
                self.stop(node_id)
            else:
                self.kill(node_id)
        self.start(node_id)

    def shutdown(self) -> None:
        """Stop every node, then remove the namespaces, links and rules. Final."""
        try:
            super().shutdown()
        finally:
            self._closed = True
            self.network.destroy()

    # -- Faults (see NetnsNetwork) ---------------------------------------------------------------

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        self.network.partition(groups)

    def isolate(self, node_id: str) -> None:
        self.network.isolate(node_id)

    def drop(self, src: str, dst: str) -> None:
        self.network.drop(src, dst)

    def loss(self, node_id: str, percent: float, direction: str = "both") -> None:
        self.network.loss(node_id, percent, direction)

    def loss_all(self, percent: float) -> None:
        self.network.loss_all(percent)

    def heal(self) -> None:
        self.network.heal()

    def faults(self) -> dict[str, Any]:
        return self.network.faults()

    # -- Observing (no proxies: the nodes are on a private bridge) ---------------------------------

    def get(self, node_id: str, path: str, timeout: float = 1.0) -> dict[str, Any] | None:
        try:
            with _OPENER.open(self.nodes[node_id].url + path, timeout=timeout) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def post(self, node_id: str, path: str, body: Any, timeout: float = 2.0,
             token: str | None = None, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body).encode()
        request = urllib.request.Request(self.nodes[node_id].url + path, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        token = self.auth_token if token is None else token
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                payload, status = response.read(), response.status
        except urllib.error.HTTPError as e:
            payload, status = e.read(), e.code
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload.decode(errors="replace")


__all__ = ["NetnsCluster", "NetnsError", "NetnsNetwork", "NetnsNode", "netns_unavailable_reason", "sweep_stale"]
