"""A namespace cluster whose nodes can lose power: each node's data dir is a
:class:`~ringrift_cluster.testing.powercut.PowerCutDisk` (what no fsync covered is lost at a cut).

:meth:`PowerCutCluster.power_cut` SIGKILLs the given nodes at the same instant and then cuts
their disks: nothing runs between the kill and the cut that could fsync, so the disks keep
exactly what a machine that lost power would. :meth:`start` mounts a node's disk again first
(the reboot). Node logs live beside the disks, not on them, so a cut never eats the evidence.

Needs what :class:`~.cluster.NetnsCluster` needs plus ``/dev/fuse``, ``fusermount3`` and mfusepy.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from ..local_cluster import LocalNode
from ..powercut import PowerCutDisk
from .cluster import NetnsCluster
from .registry import AtExit


class PowerCutCluster(NetnsCluster):
    """:class:`NetnsCluster` with every node's data dir on a disk that can lose power."""

    def __init__(self, n: int, root: str | os.PathLike[str], *, writeback_s: float | None = None,
                 **kwargs: Any) -> None:
        """``writeback_s``: the disks write back what is dirty that often (see PowerCutDisk;
        default never: only an fsync makes data durable)."""
        super().__init__(n, root, **kwargs)
        self.disks: dict[str, PowerCutDisk] = {}
        for node_id, node in self.nodes.items():
            node.log_path = self.root / "logs" / f"{node_id}.log"
            self.disks[node_id] = PowerCutDisk(self.root / "disks" / node_id, node.data_dir, writeback_s)
        self.cuts = 0  # power cuts so far (nodes x cuts)
        _live.add(self)

    def start(self, node_id: str) -> LocalNode:
        disk = self.disks[node_id]
        if not disk.mounted():
            disk.mount()
        self.nodes[node_id].log_path.parent.mkdir(parents=True, exist_ok=True)
        return super().start(node_id)

    def power_cut(self, node_ids: Iterable[str]) -> None:
        """The machines of ``node_ids`` lose power: SIGKILL (all at once), then every byte their
        disks had not fsynced is gone. They stay down until :meth:`start`."""
        ids = list(node_ids)
        self.kill_many(ids)
        with ThreadPoolExecutor(max_workers=max(1, len(ids))) as pool:
            list(pool.map(lambda n: self.disks[n].cut(), ids))
        self.cuts += len(ids)

    def shutdown(self) -> None:
        """Stop the nodes and the network, then the disks (after the nodes: a disk stopped under
        a running node would fail its writes)."""
        try:
            super().shutdown()
        finally:
            self._unmount_all()

    def _unmount_all(self) -> None:
        for disk in self.disks.values():
            with contextlib.suppress(Exception):
                disk.stop()
        _live.discard(self)


_live: AtExit[PowerCutCluster] = AtExit(lambda cluster: cluster.shutdown())


__all__ = ["PowerCutCluster"]
