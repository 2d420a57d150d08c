"""A namespace cluster: :class:`~ringrift_cluster.testing.LocalCluster`'s API over the hosts of a
:class:`~.network.NetnsNetwork`, plus its fault verbs."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ..api_client import get_json, post_json
from ..local_cluster import LocalCluster, LocalNode
from .network import NetnsNetwork
from .registry import API_PORT, RAFT_PORT, SWIM_PORT

# Proxy settings in the environment must never route the observer's requests.
_SETPRIV = shutil.which("setpriv") if subprocess.run(
    ["sh", "-c", "setpriv --help 2>&1 | grep -q pdeathsig"], capture_output=True).returncode == 0 else None



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
        return get_json(self.nodes[node_id].url + path, timeout)

    def post(self, node_id: str, path: str, body: Any, timeout: float = 2.0,
             token: str | None = None, raw: bytes | None = None) -> tuple[int, Any]:
        return post_json(self.nodes[node_id].url + path, body, timeout,
                         self.auth_token if token is None else token, raw)


__all__ = ["NetnsCluster", "NetnsNode"]
