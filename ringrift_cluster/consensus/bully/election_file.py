"""``election.json``: what a Bully voter remembers across restarts, so that it never grants an
epoch twice (its highest epoch and its unexpired grant) and starts candidacies above every epoch
it saw. A grant's expiry is monotonic in memory and wall-clock time on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ...durable import write_json_durably
from . import rules


class ElectionFile:
    def __init__(self, path: Path, *, clock: Callable[[], float], wall: Callable[[], float], log: Any) -> None:
        self.path = path
        self._clock = clock
        self._wall = wall
        self._log = log

    def load(self, ledger: rules.VoterLedger | None) -> int | None:
        """The epoch last known (None without a readable file); restores ``ledger``'s epoch and grant."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            self._log.warning("election_state_unreadable", path=str(self.path), error=str(e))
            return None
        if ledger is not None:
            ledger.highest_epoch = int(data.get("highest_epoch", 0))
            grant = data.get("grant")
            if grant:
                expires = self._clock() + (float(grant["expires_wall"]) - self._wall())
                ledger.grant = rules.Grant(grant["leader_id"], grant["lease_id"], int(grant["epoch"]), expires)
        return int(data.get("known_epoch", 0))

    def save(self, known_epoch: int, ledger: rules.VoterLedger | None) -> None:
        grant = ledger.grant if ledger else None
        data = {
            "known_epoch": known_epoch,
            "highest_epoch": ledger.highest_epoch if ledger else 0,
            "grant": None if grant is None else {
                "leader_id": grant.leader_id, "lease_id": grant.lease_id, "epoch": grant.epoch,
                "expires_wall": self._wall() + (grant.expires - self._clock()),
            },
        }
        write_json_durably(self.path, data)


__all__ = ["ElectionFile"]
