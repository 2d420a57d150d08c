"""CPU costs the simulated nodes pay, measured on the library's own objects on this machine."""

from __future__ import annotations

import functools
import time

from ..membership.swim.bridge import library_member_list


@functools.lru_cache(maxsize=8)
def cycle_scan_per_member_s(n: int = 2000) -> float:
    """Seconds per member of the member-list scans swim-p2p runs every protocol cycle (alive,
    suspect, dead and total counts for its log line, two random picks): the cycle's work that
    grows with N."""
    MemberList, MemberState = library_member_list()

    ml = MemberList(("10.0.0.1", 7947))
    for i in range(n):
        ml.add_member((f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 7947))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        len(ml.get_alive_members())
        len(ml.get_suspect_members())
        len([m for m in ml.get_all_members() if m.state == MemberState.DEAD])
        len(ml.get_all_members())
        ml.get_random_members(3)
        ml.get_random_members(1, include_dead=True)
        best = min(best, time.perf_counter() - t0)
    return best / n
