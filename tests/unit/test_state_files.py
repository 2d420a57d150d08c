"""State files that cannot be trusted are refused with a log line naming them, never loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ringrift_cluster.errors import BackendUnavailable
from ringrift_cluster.state import StateMachine, commands as c
from ringrift_cluster.store.export import EXPORT_FILE, read_export, read_last_run, write_export, write_last_run
from ringrift_cluster.store.journal import load_journal, read_journal_state


def machine_with(n: int) -> StateMachine:
    m = StateMachine()
    m.apply(c.stamp(c.seal("s1"), 1.0))
    for i in range(n):
        m.apply(c.stamp(c.add_work(f"w{i}", "t"), 2.0 + i))
    return m


def refused(tmp_path: Path, cluster: str = "ringrift") -> tuple[object, list[dict]]:
    with capture_logs() as logs:
        result = read_export(tmp_path, cluster)
    return result, [e for e in logs if e["event"] == "state_file_refused"]


def test_a_good_export_round_trips(tmp_path: Path) -> None:
    m = machine_with(3)
    write_export(tmp_path, "raft", m.snapshot(), "ringrift")
    export, logs = refused(tmp_path)
    assert export is not None and export.lineage == m.lineage() and export.source == "raft" and not logs
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("damage", ["truncated", "not-json", "not-an-object", "no-snapshot", "bad-snapshot",
                                    "lineage-mismatch", "other-cluster"])
def test_a_bad_export_is_refused_with_its_path(tmp_path: Path, damage: str) -> None:
    write_export(tmp_path, "raft", machine_with(3).snapshot(), "ringrift")
    path = tmp_path / EXPORT_FILE
    body = json.loads(path.read_text())
    if damage == "truncated":
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
    elif damage == "not-json":
        path.write_bytes(b"\xff\xfe garbage")
    elif damage == "not-an-object":
        path.write_text("[1, 2]")
    elif damage == "no-snapshot":
        del body["snapshot"]
        path.write_text(json.dumps(body))
    elif damage == "bad-snapshot":
        body["snapshot"]["work"] = "nope"
        path.write_text(json.dumps(body))
    elif damage == "lineage-mismatch":
        body["lineage"]["changes"] = 99
        path.write_text(json.dumps(body))
    elif damage == "other-cluster":
        body["cluster"] = "someone-else"
        path.write_text(json.dumps(body))
    before = path.read_bytes()
    export, logs = refused(tmp_path)
    assert export is None
    assert len(logs) == 1 and logs[0]["path"] == str(path), logs
    assert path.read_bytes() == before  # left in place for the operator, untouched


def test_a_journal_with_a_torn_tail_keeps_what_was_whole(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    lines = [json.dumps(c.stamp(c.add_work(f"w{i}", "t"), 1.0 + i)) for i in range(3)]
    (state / "journal.jsonl").write_text("\n".join(lines) + "\n" + lines[0][:20])
    m = StateMachine()
    assert load_journal(state, m, repair=False) == (3, 20)
    assert m.work_stats()["total"] == 3
    assert read_journal_state(tmp_path)["counters"]["change"] == 3


def test_a_corrupt_journal_snapshot_refuses_to_start_and_is_not_read_as_a_candidate(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "snapshot.json").write_text('{"format": 1, "counters"')
    with pytest.raises(BackendUnavailable, match="snapshot.json"):
        load_journal(state, StateMachine(), repair=True)
    with capture_logs() as logs:
        assert read_journal_state(tmp_path) is None
    assert any(e["event"] == "state_file_refused" and "state" in e["path"] for e in logs)


def test_last_run_marker(tmp_path: Path) -> None:
    assert read_last_run(tmp_path) is None
    write_last_run(tmp_path, "journal", False)
    last = read_last_run(tmp_path)
    assert last is not None and last.store == "journal" and not last.clean
    (tmp_path / "store-run.json").write_text("{")
    with capture_logs() as logs:
        assert read_last_run(tmp_path) is None
    assert logs and logs[0]["event"] == "state_file_refused"
