"""The pure Bully/lease rules on a fake clock: quorum math, grants, leader lease validity."""

from __future__ import annotations

import pytest

from ringrift_cluster.consensus.bully import rules
from ringrift_cluster import quorum
from ringrift_cluster.consensus.bully.rules import VoterLedger
from ringrift_cluster.quorum import QuorumHealth


@pytest.mark.parametrize("n, need", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4), (8, 5), (9, 5)])
def test_quorum_is_a_strict_majority(n: int, need: int) -> None:
    assert quorum.quorum_size(n) == need
    voters = [f"v{i}" for i in range(n)]
    assert quorum.has_quorum(voters, voters[:need])
    assert not quorum.has_quorum(voters, voters[: need - 1])
    # Two disjoint groups can never both hold a quorum.
    assert not (quorum.has_quorum(voters, voters[:need]) and quorum.has_quorum(voters, voters[need:]))


def test_quorum_needs_voters() -> None:
    with pytest.raises(ValueError):
        quorum.quorum_size(0)
    assert not quorum.has_quorum([], ["a"])
    assert quorum.alive_voters(["a", "b"], ["b", "x"]) == 1


@pytest.mark.parametrize(
    "alive, total, level",
    [(0, 3, "lost"), (1, 3, "lost"), (2, 3, "minimum"), (3, 3, "degraded"),
     (3, 5, "minimum"), (4, 5, "degraded"), (5, 5, "healthy"), (4, 7, "minimum"), (7, 7, "healthy"), (0, 0, "lost")],
)
def test_health_levels(alive: int, total: int, level: str) -> None:
    assert quorum.quorum_health(alive, total) is QuorumHealth(level)


def test_health_numeric_levels() -> None:
    assert [h.level for h in QuorumHealth] == [3, 2, 1, 0]


def test_rank_prefers_the_preferred_leader_then_the_greatest_id() -> None:
    assert rules.outranking("b", ["a", "b", "c", "d"], None) == ["d", "c"]
    assert rules.outranking("b", ["a", "b", "c", "d"], "a") == ["a", "d", "c"]
    assert rules.outranking("a", ["a", "b"], "a") == []


def test_grant_then_refuse_another_leader_until_expiry() -> None:
    ledger = VoterLedger()
    first = ledger.request("c", "c_1", epoch=1, duration=10, now=0)
    assert first.granted and first.reason == "granted" and first.epoch == 1
    # A higher epoch does not override an unexpired grant of another leader.
    refused = ledger.request("b", "b_1", epoch=5, duration=10, now=9.9)
    assert not refused.granted and refused.reason == "lease_already_granted"
    assert refused.grant is not None and refused.grant.leader_id == "c"
    later = ledger.request("b", "b_1", epoch=2, duration=10, now=10.0)
    assert later.granted and ledger.highest_epoch == 2


def test_one_leader_per_epoch_even_after_expiry() -> None:
    ledger = VoterLedger()
    assert ledger.request("c", "c_1", 3, 10, now=0).granted
    again = ledger.request("b", "b_1", 3, 10, now=20)
    assert not again.granted and again.reason == "stale_epoch"
    older = ledger.request("b", "b_1", 2, 10, now=20)
    assert not older.granted and older.reason == "stale_epoch" and older.epoch == 3
    assert ledger.request("b", "b_2", 4, 10, now=20).granted


def test_renewal_extends_the_same_lease() -> None:
    ledger = VoterLedger()
    ledger.request("c", "c_1", 1, 10, now=0)
    renewed = ledger.request("c", "c_1", 1, 10, now=8)
    assert renewed.granted and renewed.reason == "renewed" and renewed.grant.expires == 18
    assert ledger.current(17.9) is not None and ledger.current(18) is None


def test_revoke_frees_the_lease_for_others() -> None:
    ledger = VoterLedger()
    ledger.request("c", "c_1", 1, 10, now=0)
    assert not ledger.revoke("b", "c_1", now=1)  # only the holder can give it back
    assert not ledger.revoke("c", "other", now=1)
    assert ledger.revoke("c", "c_1", now=1)
    assert ledger.current(1) is None
    assert ledger.request("b", "b_1", 2, 10, now=1).granted
    assert not ledger.revoke("c", "c_1", now=2)


def test_leader_lease_is_shorter_than_any_grant() -> None:
    lease = rules.LeaderLease.after_round(epoch=1, lease_id="x", round_started=100, duration=10, margin=1)
    assert lease.valid(108.99) and not lease.valid(109)
    ledger = VoterLedger()
    ledger.request("c", "x", 1, 10, now=100.2)  # the voter received the request a bit later
    assert ledger.current(lease.valid_until) is not None  # the voter still holds it when the leader stops


def test_formats() -> None:
    assert rules.lease_id("node-a", 1700000000.7, "deadbeef") == "node-a_1700000000_deadbeef"
    assert rules.fence_token("node-a", 7, 1700000000.2) == "node-a:7:1700000000"
