"""The soak's sampler reads a node's /health and /metrics and tells its progress as it goes."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from ringrift_cluster.testing.soak import Sampler

METRICS = """ringrift_event_loop_stall_seconds_count 10.0
ringrift_event_loop_stall_seconds_bucket{le="0.1"} 9.0
ringrift_event_loop_stall_max_seconds 0.25
ringrift_event_loop_tasks 17.0
ringrift_state_records 42.0
"""


class Node(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        body = json.dumps({"pid": os.getpid()}).encode() if self.path == "/health" else METRICS.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_sampler_records_each_node_and_tells_its_progress() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Node)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    cluster = SimpleNamespace(nodes={"node-1": SimpleNamespace(url=url, running=True)})
    lines: list[str] = []
    sampler = Sampler(cluster, interval_s=0.02, progress=lines.append, progress_every_s=0.1).start()
    try:
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sampler.stop()
        server.shutdown()
    assert lines, f"no progress line in 10 s; {len(sampler.samples)} samples"
    assert "1 nodes answering" in lines[0] and "tasks <= 17" in lines[0], lines[0]
    assert "longest stall 0.250 s" in lines[0] and "state records <= 42" in lines[0], lines[0]
    sample = sampler.samples[0]
    assert (sample.node, sample.pid, sample.stalls_over[0]) == ("node-1", os.getpid(), 1), sample
