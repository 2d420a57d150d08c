"""The status page in a real headless Chromium, on a real hybrid (SWIM + heartbeats) Raft cluster.

Writes go through the real CLI; the page must list every node, the work and the lock with its
fence token, load nothing from outside the node, and show a SIGKILLed node failed within the
membership's detection bound (plus one refresh). The screenshot is kept in the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


from cdp_browser import Chromium

from ringrift_cluster.testing import LocalCluster

pytestmark = pytest.mark.integration
TOKEN = "page-test-token"
REFRESH_S = 0.5


def cli(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RINGRIFT_URL": cluster.nodes["node-1"].url, "RINGRIFT_CLUSTER_AUTH_TOKEN": TOKEN}
    return subprocess.run([sys.executable, "-m", "ringrift_cluster", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def node_state(node_id: str) -> str:
    return f"(document.querySelector('#members tbody tr[data-node=\"{node_id}\"]') || {{}}).dataset?.state"


async def test_status_page_shows_the_cluster_and_a_killed_node_in_a_real_browser(tmp_path: Path) -> None:
    cluster = LocalCluster(3, tmp_path / "cluster", auth_token=TOKEN,
                           settings={"membership_mode": "hybrid", "consensus_mode": "raft"})
    browser = Chromium(tmp_path)
    try:
        cluster.start_all()
        await asyncio.to_thread(cluster.wait_for_leader, 60)
        await asyncio.to_thread(cluster.wait_converged, 30)
        for args in (["work", "add", "W1", "--type", "selfplay", "--priority", "50"],
                     ["work", "add", "W2", "--type", "train"],
                     ["work", "claim", "--node", "gpu-1", "--type", "selfplay"]):
            done = await asyncio.to_thread(cli, cluster, *args)
            assert done.returncode == 0, done
        lock = await asyncio.to_thread(cli, cluster, "lock", "acquire", "train-lock", "--holder", "gpu-1",
                                       "--ttl", "300", "--json")
        assert lock.returncode == 0, lock
        fence = json.loads(lock.stdout)["fence_token"]

        url = cluster.nodes["node-1"].url
        await browser.start()
        await browser.navigate(f"{url}/?refresh_ms={int(REFRESH_S * 1000)}")  # / redirects to /ui
        ids = sorted(cluster.nodes)
        await browser.wait_for(" && ".join(f"{node_state(n)} === 'alive'" for n in ids), 30,
                               "every node listed alive")
        await browser.wait_for(f"document.querySelector('#locks tr[data-lock=\"train-lock\"]')?.dataset.fenceToken"
                               f" === '{fence}'", 15, "the lock and its fence token")
        await browser.wait_for("document.querySelector('#work-counts [data-status=\"pending\"]')?.dataset.count === '1'"
                               " && document.querySelector('#work-counts [data-status=\"claimed\"]')?.dataset.count === '1'"
                               " && !!document.querySelector('#work tr[data-work=\"W1\"]')", 15, "the work queue")
        assert (await browser.evaluate("location.pathname + location.search")) == f"/ui?refresh_ms={int(REFRESH_S * 1000)}"
        leader = await browser.evaluate("document.getElementById('leader').textContent")
        assert leader in ids, leader
        headers = await browser.evaluate("[...document.querySelectorAll('#members-head th')].map(t => t.textContent)")
        assert "SWIM" in headers and "Heartbeat" in headers, headers
        # Offline: every resource the page loaded came from the node itself.
        loaded = await browser.evaluate("[location.href, ...performance.getEntriesByType('resource').map(e => e.name)]")
        assert loaded and all(u.startswith(url + "/") for u in loaded), loaded
        assert any(u.endswith("/ui/status.js") for u in loaded) and any(u.endswith("/ui/status.css") for u in loaded)

        # The bound: hybrid declares a member failed once every source has (the slower one).
        swim = cluster.get("node-1", "/swim/status")
        status = cluster.status("node-1")
        bound = max(swim["config"]["failure_timeout"], status["membership"]["sources"]["heartbeat"]["failed_after_s"])
        victim = "node-3"
        killed_at = time.monotonic()
        await asyncio.to_thread(cluster.kill, victim)
        await browser.wait_for(f"{node_state(victim)} === 'failed'", bound + 10, f"{victim} shown failed")
        shown_after = time.monotonic() - killed_at
        assert shown_after <= bound + REFRESH_S + 2.0, (shown_after, bound)
        await browser.wait_for(f"!!document.querySelector('#events tr[data-node=\"{victim}\"][data-kind=\"failed\"]')",
                               10, "the failure in the events table")
        detected = await browser.evaluate(
            f"document.querySelector('#events tr[data-node=\"{victim}\"][data-kind=\"failed\"]').cells[4].textContent")
        assert detected.endswith(" s") and float(detected[:-2]) > 0, detected
        await browser.wait_for(f"!document.getElementById('compare-section').hidden && "
                               f"!!document.querySelector('#compare tr[data-node=\"{victim}\"]')", 20,
                               "the SWIM / heartbeat comparison of the death")
        shot = await browser.screenshot(tmp_path / "status-page.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        print(f"\nstatus page: {victim} shown failed {shown_after:.1f}s after SIGKILL (bound {bound:.1f}s); "
              f"screenshot {shot}")
    except BaseException:
        print(f"\n===== chromium log =====\n{browser.log_tail()}\n===== node logs =====\n{cluster.logs(40)}")
        raise
    finally:
        await browser.close()
        await asyncio.to_thread(cluster.shutdown)
