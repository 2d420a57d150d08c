"""A Bully candidate whose own ledger granted another candidate its epoch while its lease round
ran wins again one epoch up, so that as leader it can count its own vote: otherwise every renewal
needs a majority of the others, and a leader that loses two of four (a one-way drop) steps down
although it still reaches a quorum (seen in the hybrid one-way-to-leader fault scenario)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ringrift_cluster.config import load_config
from ringrift_cluster.consensus.bully import BullyElection
from ringrift_cluster.consensus.bully.rules import VoterLedger
from ringrift_cluster.peer_client import PeerUnreachable
from ringrift_cluster.testing.stubs import ManualClock

IDS = "abcde"
ME = "c"


class Voters:
    """The other four voters' ledgers behind a fake peer client; ``during_first_round`` runs once,
    when the first lease request of the candidate reaches a voter (before its own vote)."""

    def __init__(self, config: Any, clock: ManualClock) -> None:
        self.by_url = {config.hosts[n].api_url: n for n in IDS if n != ME}
        self.ledgers = {n: VoterLedger() for n in IDS if n != ME}
        self.clock = clock
        self.unreachable: set[str] = set()
        self.during_first_round: Any = None

    async def post(self, url: str, path: str, body: dict[str, Any], timeout: float, headers: Any = None) -> tuple[int, Any]:
        voter = self.by_url[url]
        if voter in self.unreachable:
            raise PeerUnreachable(f"{voter} does not answer")
        ledger = self.ledgers[voter]
        if path == "/election/lease":
            if self.during_first_round is not None:
                hook, self.during_first_round = self.during_first_round, None
                hook(body["lease_epoch"])
            d = ledger.request(body["leader_id"], body["lease_id"], body["lease_epoch"], body["lease_duration"],
                               self.clock())
            return 200, {"granted": d.granted, "lease_epoch": d.epoch}
        if path == "/election/lease_revoke":
            return 200, {"revoked": ledger.revoke(body["leader_id"], body["lease_id"], self.clock())}
        return 200, {"accepted": True}


class NoMembers:
    def members(self) -> dict[str, Any]:
        return {}


def _config(tmp_path: Path) -> Any:
    hosts = {n: {"p2p_host": "127.0.0.1", "p2p_port": 9100 + i, "swim_port": 9200 + i, "raft_port": 9300 + i}
             for i, n in enumerate(IDS)}
    path = tmp_path / "cluster.yaml"
    path.write_text(json.dumps({"hosts": hosts, "ringrift_cluster": {"preset": "local", "consensus_mode": "bully"}}))
    return load_config(path, env={}, overrides={"node_id": ME, "data_dir": str(tmp_path / ME)})


def test_a_win_without_its_own_vote_is_won_again_above_and_renewals_count_it(tmp_path: Path) -> None:
    async def run() -> None:
        config = _config(tmp_path)
        clock = ManualClock(1000.0)
        voters = Voters(config, clock)
        election = BullyElection(config, voters, NoMembers(), clock=clock)  # type: ignore[arg-type]
        election._voter.load()
        election._deferral_timed_out = True  # straight to the lease round (the greater nodes stay silent)
        duration = config.election.lease_duration_s
        # While c's round runs, e asks c's ledger for the same epoch, and gets it.
        voters.during_first_round = lambda epoch: election.handle_lease_request("e", "lease-of-e", duration, epoch)
        first_epoch = election._voter.next_epoch()
        await election._elect()
        assert election.role == "leader", election.leadership()
        assert election._leader_epoch == first_epoch + 1, "won again one epoch up"
        assert all(v.current(clock()) is None or v.current(clock()).epoch == first_epoch + 1
                   for v in voters.ledgers.values()), "the first win's leases were handed back"
        # e's lease in c's ledger runs out; then d and e stop answering c (a one-way drop).
        clock.now += duration + 0.1
        voters.unreachable = {"d", "e"}
        await election._renew()
        assert election.role == "leader", "a, b and c itself are a majority of five"
        assert election._voter.ledger.current(clock()).leader_id == ME

    asyncio.run(run())


def test_a_win_with_its_own_vote_keeps_its_epoch(tmp_path: Path) -> None:
    async def run() -> None:
        config = _config(tmp_path)
        clock = ManualClock(1000.0)
        election = BullyElection(config, Voters(config, clock), NoMembers(), clock=clock)  # type: ignore[arg-type]
        election._voter.load()
        election._deferral_timed_out = True
        first_epoch = election._voter.next_epoch()
        await election._elect()
        assert (election.role, election._leader_epoch) == ("leader", first_epoch)

    asyncio.run(run())
