"""The durable journal's pwrite file keeps pysyncobj's format: each side reads what the other wrote."""

from __future__ import annotations

import os
from pathlib import Path

from pysyncobj import journal as pso_journal

from ringrift_cluster.consensus.raft.durable import journal_class
from ringrift_cluster.consensus.raft.journal_file import GROW_MIN_B, PositionalFile


def entries(journal: object) -> list[tuple[bytes, int, int]]:
    return [journal[i] for i in range(len(journal))]  # type: ignore[index]


def test_pysyncobj_reads_back_what_the_durable_journal_wrote_and_the_other_way_round(tmp_path: Path) -> None:
    path = str(tmp_path / "j")
    ours = journal_class(pso_journal)(path, "batch")
    for i in range(1, 301):
        ours.add(b"command-%d" % i * (i % 7 + 1), i, 1 + i // 100)
    ours.deleteEntriesFrom(249)  # a follower's truncation (a list position): reads record sizes backwards
    ours.add(b"after the truncation", 250, 4)
    written = entries(ours)
    ours._destroy()
    theirs = pso_journal.FileJournal(path)
    assert entries(theirs) == written and len(written) == 250 and written[-1] == (b"after the truncation", 250, 4)
    theirs.add(b"written through the mapping", 251, 4)
    theirs._destroy()
    again = journal_class(pso_journal)(path, "fsync")
    assert entries(again) == written + [(b"written through the mapping", 251, 4)]
    again._destroy()


def test_the_file_grows_in_steps_and_reads_zeros_past_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"header")
    f = PositionalFile(str(path))
    f.write(10, b"x" * 5)
    assert os.path.getsize(path) >= GROW_MIN_B  # one step, not the 15 bytes asked for
    with open(path, "rb") as raw:
        assert raw.read(20) == b"header" + b"\0" * 4 + b"xxxxx" + b"\0" * 5
    size = os.path.getsize(path)
    f.write(size - 2, b"abcd")  # across the end: grows again
    assert os.path.getsize(path) > size and f.read(size - 2, 4) == b"abcd"
    assert f.read(os.path.getsize(path) - 1, 8) == b"\0" * 8
    f._destroy()
