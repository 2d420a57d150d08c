"""What every benchmark of the report shares: percentiles, the machine it ran on, a process's
CPU and RSS from /proc, progress lines, and the JSON it hands to ``report.py``."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0-100")
    rank = q / 100 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, min, p50, p90, p99, max of a sample."""
    return {"n": len(values), "min": min(values) if values else None, "p50": percentile(values, 50),
            "p90": percentile(values, 90), "p99": percentile(values, 99), "max": max(values) if values else None}


def cdf_points(values: Sequence[float]) -> tuple[list[float], list[float]]:
    """(sorted values, fraction at or below each): what a latency CDF plots."""
    ordered = sorted(values)
    n = len(ordered)
    return ordered, [(i + 1) / n for i in range(n)]


def machine() -> dict[str, Any]:
    """The machine a figure was measured on: cores, CPU model, load average right now."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "load": [round(x, 2) for x in os.getloadavg()],
            "kernel": platform.release(), "python": platform.python_version(),
            "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def _stat(path: str) -> tuple[str, list[str]]:
    """A /proc stat file: (the command name, the fields after it)."""
    with open(path) as f:
        text = f.read()
    return text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()


def _cpu_s(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # user + system ticks


def proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, RSS bytes) of a process, from /proc/<pid>/stat."""
    _, fields = _stat(f"/proc/{pid}/stat")
    return _cpu_s(fields), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds used so far by each thread of ``pid``, by ``name/tid``."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name, fields = _stat(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            continue  # the thread ended
        out[f"{name}/{tid}"] = _cpu_s(fields)
    return out


def footprint(pids: dict[str, int], seconds: float) -> dict[str, dict[str, float]]:
    """Per process over an idle window: CPU % of one core and RSS in MB at its end."""
    before = {name: proc_usage(pid)[0] for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    out = {}
    for name, pid in pids.items():
        cpu, rss = proc_usage(pid)
        out[name] = {"cpu_pct": 100 * (cpu - before[name]) / elapsed, "rss_mb": rss / 2**20}
    return out


def progress(text: str) -> None:
    """A progress line on stderr, stamped with the time and the 1-minute load average."""
    print(f"# [{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {text}", file=sys.stderr, flush=True)


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """The figures for report.py, with the machine and the command that made them."""
    if path is None:
        return
    result = {"machine": machine(), "command": " ".join(["python", *sys.argv]), **result}
    path.write_text(json.dumps(result, indent=1, default=float))


def timed(call: Any) -> tuple[float, Any]:
    """(milliseconds, result) of one call."""
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result
