"""The network of a namespace cluster: bridge, namespaces, veths and the nftables fault rules.
No processes (see :mod:`.cluster`)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Sequence

from .registry import (REGISTRY, TABLE, AtExit, NetnsError, _b36, _existing, _ip, _kill_namespace_processes,
                       _registry_lock, _run, _start_time, _used_networks, netns_unavailable_reason, sweep_stale)

# Where subnets are taken from: 10.200.0.0/24 .. 10.249.255.0/24.
_SUBNET_FIRST, _SUBNET_COUNT = (10 << 24) | (200 << 16), 50 * 256
_seq_lock = threading.Lock()
_seq = 0


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
            changed = {h: script for h in self.hosts if (script := self._render(h)) != self._rendered[h]}
            # All namespaces at once: one after the other, a cut takes effect host by host, and a
            # leader elected on one side meanwhile can still reach a host whose rules come last.
            with ThreadPoolExecutor(max_workers=max(1, len(changed))) as pool:
                for future in [pool.submit(self._load, h, script) for h, script in changed.items()]:
                    future.result()
            self._rendered.update(changed)

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


_finalizers: AtExit[NetnsNetwork] = AtExit(lambda network: network.destroy())


__all__ = ["NetnsNetwork"]
