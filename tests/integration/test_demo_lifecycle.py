"""The demo owns its nodes: no node outlives it, however it ends, and it never shows a node it
did not start (or that failed) as up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ringrift_cluster.testing import free_base_port, wait_until


from demo_driver import Demo, Watched, alive, processes_mentioning, wait_all_gone

pytestmark = pytest.mark.integration

N = 3


def _args(tmp_path: Path, base: int, *extra: str) -> list[str]:
    return ["--nodes", str(N), "--base-port", str(base), "--data-dir", str(tmp_path / "demo"), *extra]


def _nothing_left(tmp_path: Path, demo: Watched, pids: list[int]) -> None:
    """The nodes, then every process naming the demo's data dir (the demo too), are gone."""
    wait_all_gone(pids, 30, demo.describe)
    mark = str(tmp_path / "demo")
    wait_until(lambda: not processes_mentioning(mark), 30, what="no process of the demo left",
               describe=lambda: f"left: {processes_mentioning(mark)}; demo {demo.describe()}")


def test_closing_the_terminal_stops_the_demo_and_every_node(tmp_path: Path) -> None:
    demo = Demo(_args(tmp_path, free_base_port(3 * N), "--duration", "120"), tmp_path, terminal=True)
    try:
        pids = [pid for _, pid in demo.wait_nodes_up(N).values()]
        demo.hang_up()  # SIGHUP from the kernel, as when the terminal window closes
        demo.wait_for(lambda: demo.proc.poll() is not None, 30, "the demo exits after SIGHUP")
        _nothing_left(tmp_path, demo, pids)
    finally:
        demo.close()


def test_nodes_stop_when_the_demo_is_killed(tmp_path: Path) -> None:
    demo = Demo(_args(tmp_path, free_base_port(3 * N), "--duration", "120"), tmp_path)
    try:
        pids = [pid for _, pid in demo.wait_nodes_up(N).values()]
        demo.proc.send_signal(signal.SIGKILL)  # no cleanup of its own: the nodes must notice
        demo.proc.wait(timeout=10)
        _nothing_left(tmp_path, demo, pids)
    finally:
        demo.close()


def test_killing_the_terminal_that_holds_the_demo_leaves_no_node(tmp_path: Path) -> None:
    """The demo's parent (a terminal, here a process holding the pty) is SIGKILLed."""
    holder = tmp_path / "terminal.py"
    holder.write_text(
        "import os, subprocess, sys\n"
        "from demo_driver import Demo\n"
        "from pathlib import Path\n"
        "demo = Demo(sys.argv[2:], Path(sys.argv[1]), terminal=True)\n"
        "with open(Path(sys.argv[1]) / 'screen.out', 'ab') as screen:\n"
        "    while True:  # a terminal shows what the demo writes until it is killed\n"
        "        demo.pump(); screen.write(b''.join(demo.chunks)); screen.flush(); demo.chunks.clear()\n"
        "        __import__('time').sleep(0.05)\n")
    base = free_base_port(3 * N)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    terminal = subprocess.Popen([sys.executable, str(holder), str(tmp_path), *_args(tmp_path, base, "--duration", "120")],
                                env=env, stdin=subprocess.DEVNULL)
    watcher = Watched(terminal, tmp_path / "screen.out")
    try:
        pids = [pid for _, pid in watcher.wait_nodes_up(N).values()]
        terminal.send_signal(signal.SIGKILL)
        terminal.wait(timeout=10)
        _nothing_left(tmp_path, watcher, pids)
    finally:
        if terminal.poll() is None:
            terminal.kill()
        for pid in processes_mentioning(str(tmp_path / "demo")):
            os.kill(pid, signal.SIGKILL)


def test_ports_in_use_fail_fast_naming_the_port_and_its_holder(tmp_path: Path) -> None:
    base = free_base_port(3 * N)
    squatter = subprocess.Popen([sys.executable, "-c", (
        "import socket, sys, time; s = socket.socket(); "
        f"s.bind(('127.0.0.1', {base + 1})); s.listen(); print('ready', flush=True); time.sleep(300)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert squatter.stdout is not None and squatter.stdout.readline().strip() == "ready"
        result = subprocess.run([sys.executable, "-m", "ringrift_cluster", "demo", *_args(tmp_path, base, "--duration", "60")],
                                capture_output=True, text=True, timeout=30)
        seen = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert result.returncode == 1, seen
        assert f"port {base + 1} (node-2 API, TCP) is in use by pid {squatter.pid} (" in result.stderr, seen
        assert "membership swim, consensus raft" in result.stdout.splitlines()[0], seen
        assert not processes_mentioning(str(tmp_path / "demo")), seen
        assert squatter.poll() is None  # the holder is left alone
    finally:
        squatter.kill()
        squatter.wait(timeout=10)


def test_a_node_that_fails_is_reported_and_stops_the_demo(tmp_path: Path) -> None:
    (tmp_path / "demo" / "node-2").mkdir(parents=True)
    (tmp_path / "demo" / "node-2" / "raft").write_text("not a directory")  # node-2 cannot start Raft
    base = free_base_port(3 * N)
    result = subprocess.run([sys.executable, "-m", "ringrift_cluster", "demo", *_args(tmp_path, base, "--duration", "60")],
                            capture_output=True, text=True, timeout=90)
    seen = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 1, seen
    assert "node-2 failed: exit code 1: FileExistsError" in result.stderr, seen
    assert not processes_mentioning(str(tmp_path / "demo")), seen

    kept = subprocess.run([sys.executable, "-m", "ringrift_cluster", "demo",
                           *_args(tmp_path, base, "--duration", "4", "--keep-going")],
                          capture_output=True, text=True, timeout=90)
    seen = f"exit {kept.returncode}\nstdout:\n{kept.stdout}\nstderr:\n{kept.stderr}"
    assert kept.returncode == 0, seen
    assert "node-2 failed: exit code 1" in kept.stderr and "node-2=failed" in kept.stdout, seen
    assert "node-2=follower" not in kept.stdout and "node-2=leader" not in kept.stdout, seen
    assert not processes_mentioning(str(tmp_path / "demo")), seen


def test_a_foreign_process_on_a_nodes_port_is_never_shown_as_that_node(tmp_path: Path) -> None:
    """A node of another demo answering on our port: the pid in /health does not match."""
    from ringrift_cluster.demo.owned import OwnedCluster

    base = free_base_port(3)
    other = OwnedCluster(1, tmp_path / "other", base_port=base)
    ours = OwnedCluster(1, tmp_path / "ours", base_port=base)
    try:
        other.start_checked(lambda: False, lambda n, r: None)
        ours.write_config()
        ours.nodes["node-1"].proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        view = ours.view("node-1")
        assert view.state == "foreign", view
        assert f"answered by pid {other.nodes['node-1'].proc.pid}" in view.detail, view  # type: ignore[union-attr]
    finally:
        other.shutdown()
        ours.shutdown()
    assert not alive(other.nodes["node-1"].proc.pid)  # type: ignore[union-attr]
