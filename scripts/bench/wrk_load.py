"""Drive a route with wrk (a real HTTP load generator, C, its own event loop) at a fixed rate or
flat out, through ``fixed_rate.lua``, and read back its latency percentiles."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "fixed_rate.lua"
MARK = "WRK_JSON "


def available() -> bool:
    return shutil.which("wrk") is not None


def wrk_command(url: str, *, rate: float, seconds: float, connections: int = 8, threads: int = 1,
                method: str = "GET", body: str | None = None, headers: dict[str, str] | None = None) -> list[str]:
    """The wrk command line: ``rate`` requests/s in all (0: flat out), split over the threads."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
           "-s", str(SCRIPT)]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    cmd += [url, "--", f"{rate / threads:g}", method]
    if body is not None:
        cmd.append(body)
    return cmd


def parse(output: str) -> dict[str, Any]:
    """wrk's summary as ``fixed_rate.lua`` prints it, with the latencies in ms and the achieved rate."""
    for line in output.splitlines():
        if line.startswith(MARK):
            raw = json.loads(line[len(MARK):])
            break
    else:
        raise ValueError(f"no {MARK.strip()} line in wrk's output: {output[-500:]!r}")
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    percentiles = {float(p): us / 1000 for p, us in raw["percentiles_us"]}
    return {"requests": raw["requests"], "seconds": seconds, "rate": raw["requests"] / seconds,
            "errors": errors, "error_kinds": raw["errors"],
            "statuses": {int(code): count for code, count in raw.get("statuses", {}).items()}, "mean_ms": raw["mean_us"] / 1000,
            "p50_ms": percentiles[50.0], "p99_ms": percentiles[99.0], "max_ms": raw["max_us"] / 1000,
            "percentiles_ms": sorted(percentiles.items())}


def run(url: str, **kwargs: Any) -> dict[str, Any]:
    """Run wrk once against ``url`` (see ``wrk_command``) and return ``parse`` of its output."""
    cmd = wrk_command(url, **kwargs)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=kwargs["seconds"] + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    result = parse(done.stdout)
    result["command"] = " ".join(cmd)
    return result
