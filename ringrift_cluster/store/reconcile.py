"""What a new state leader does before it serves a write: gather, import the newest, seal.

Each member answers ``POST /state/candidate`` with the lineage of the newest state it holds
(its store's, its export's, or in Raft mode its old journal's; see ``candidate.py``) and whether
it has just come from another store (``switched``). The leader:

1. asks every member and waits for a majority (its own answer counts);
2. when a switch is in sight (a member says ``switched``, or holds a state ahead of the
   leader's), waits for **every** member, for at most ``state.reconcile_wait_s``: the newest
   state may be on one node only (the Bully leader's journal after a crash of all);
3. fetches the newest candidate that is ahead of its own state, if any, and imports it, then
   appends its seal (one ``state.import`` with a seal, or one ``state.seal``).

Only then does it take writes. Why this loses nothing acknowledged, and what it cannot save, is
the invariant in ``state/lineage.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

import structlog

from ..peer_client import PeerClient, PeerUnreachable
from ..state.lineage import Lineage, is_newer, newest

CANDIDATE_PATH = "/state/candidate"
_RETRY_S = 0.2
_log = structlog.get_logger("ringrift.store.reconcile")


@dataclass(frozen=True)
class Report:
    node_id: str
    lineage: Lineage | None  # None: this member holds no state
    switched: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "lineage": self.lineage.to_dict() if self.lineage else None,
                "switched": self.switched}

    @classmethod
    def from_dict(cls, node_id: str, body: Any) -> "Report":
        lineage = body.get("lineage") if isinstance(body, dict) else None
        return cls(node_id, Lineage.from_dict(lineage) if lineage is not None else None,
                   bool(body.get("switched")) if isinstance(body, dict) else False)


def new_seal(store: str, term: int, node_id: str) -> str:
    """A seal id: unique, and saying which store and term made it."""
    return f"{store}-{term}-{node_id}-{uuid.uuid4().hex[:8]}"


def seal_term(seal: str | None, store: str) -> int | None:
    """The term in a seal id made by ``store``, else None."""
    if not seal or not seal.startswith(store + "-"):
        return None
    try:
        return int(seal.split("-")[1])
    except (IndexError, ValueError):
        return None


class Gatherer:
    """Asks members for their candidates over the API (``peer_url(node_id)`` gives the URL)."""

    def __init__(self, client: PeerClient, peer_url: Callable[[str], str | None], timeout_s: float) -> None:
        self._client = client
        self._url = peer_url
        self._timeout = timeout_s

    async def report(self, node_id: str) -> Report | None:
        url = self._url(node_id)
        if url is None:
            return None
        try:
            status, body = await self._client.post(url, CANDIDATE_PATH, {}, self._timeout)
            return Report.from_dict(node_id, body) if status == 200 else None
        except (PeerUnreachable, ValueError):
            return None

    async def snapshot(self, node_id: str, lineage: Lineage) -> dict[str, Any] | None:
        """The state behind a report, if the member still holds exactly that lineage."""
        url = self._url(node_id)
        if url is None:
            return None
        try:
            status, body = await self._client.post(url, CANDIDATE_PATH, {"snapshot": True},
                                                   max(self._timeout, 10.0))
        except PeerUnreachable:
            return None
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("snapshot"), dict):
            return None
        try:
            return body["snapshot"] if Lineage.from_dict(body.get("lineage")) == lineage else None
        except ValueError:
            return None

    async def gather(self, own: Report, members: Iterable[str], wait_all_s: float,
                     still_leader: Callable[[], bool]) -> list[Report]:
        """Reports of ``members`` (``own`` included): a majority at least, all when a switch is
        in sight and they answer within ``wait_all_s``."""
        members = sorted(set(members) | {own.node_id})
        majority = len(members) // 2 + 1
        reports = {own.node_id: own}
        started = time.monotonic()
        asking: dict[str, asyncio.Task[Report | None]] = {}
        not_before: dict[str, float] = {}  # a member that failed to answer is asked again later
        try:
            while still_leader():
                for m in members:
                    if m not in reports and m not in asking and time.monotonic() >= not_before.get(m, 0.0):
                        asking[m] = asyncio.create_task(self.report(m))
                if asking:
                    # Go on as soon as any answer arrives: a member that cannot answer (a one-way
                    # drop, a dead host) must not hold up a majority that already has.
                    done, _ = await asyncio.wait(asking.values(), timeout=_RETRY_S,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    for m, task in list(asking.items()):
                        if task in done:
                            del asking[m]
                            if task.result() is not None:
                                reports[m] = task.result()  # type: ignore[assignment]
                            else:
                                not_before[m] = time.monotonic() + _RETRY_S
                missing = [m for m in members if m not in reports]
                if not missing:
                    break
                if len(reports) >= majority:
                    in_sight = any(r.switched or (r.lineage is not None and own.lineage is not None
                                                  and is_newer(r.lineage, own.lineage)) for r in reports.values())
                    if not in_sight:
                        break
                    if time.monotonic() - started >= wait_all_s:
                        _log.warning("reconcile_gave_up_waiting", missing=missing, waited_s=round(wait_all_s, 1),
                                     hint="a state held only by these members is not imported")
                        break
                if not asking:
                    await asyncio.sleep(_RETRY_S)
        finally:
            for task in asking.values():
                task.cancel()
        return list(reports.values())


def choose(own: Lineage, reports: Iterable[Report]) -> Report | None:
    """The report holding the newest state ahead of ``own``, or None."""
    ahead = [r for r in reports if r.lineage is not None and is_newer(r.lineage, own)]
    best = newest(r.lineage for r in ahead if r.lineage is not None)
    return next((r for r in ahead if r.lineage == best), None)


async def reconcile(gatherer: Gatherer, own: Report, own_lineage: Lineage, members: Iterable[str],
                    wait_all_s: float, still_leader: Callable[[], bool],
                    local_snapshot: Callable[[], Awaitable[dict[str, Any] | None]]) -> tuple[dict[str, Any] | None, list[Report]]:
    """Gather and pick: (the snapshot to import, or None when ours is the newest; the reports)."""
    while still_leader():
        reports = await gatherer.gather(own, members, wait_all_s, still_leader)
        best = choose(own_lineage, reports)
        if best is None:
            return None, reports
        if best.node_id == own.node_id:
            snapshot = await local_snapshot()
        else:
            snapshot = await gatherer.snapshot(best.node_id, best.lineage)  # type: ignore[arg-type]
        if snapshot is not None:
            _log.info("reconcile_chose", holder=best.node_id, lineage=str(best.lineage), ours=str(own_lineage),
                      reports={r.node_id: str(r.lineage) for r in reports})
            return snapshot, reports
        await asyncio.sleep(_RETRY_S)  # the holder went away or moved on: ask again
    return None, []
