"""Run ``ringrift-cluster demo`` as a person does (a terminal, a pipe) and watch its processes."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Callable

from ringrift_cluster.testing import wait_until

DEMO = [sys.executable, "-m", "ringrift_cluster", "demo"]
# Make fd 0 (the pty's slave) the controlling terminal of this new session, then become the demo.
IN_TERMINAL = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
               "os.execv(sys.executable, [sys.executable] + sys.argv[1:])")
NODE_LINE = re.compile(r"(\S+)  http://127\.0\.0\.1:(\d+)  pid (\d+)")


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> dict[int, str]:
    """Live processes whose command line contains ``text`` (a test's tmp dir names its nodes)."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and alive(int(entry.name)):
                found[int(entry.name)] = cmdline.strip()
    return found


def health_pid(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1.0) as response:
            return json.loads(response.read()).get("pid")
    except (OSError, ValueError, http.client.HTTPException):
        return None


class Watched:
    """A process whose output, collected in the file ``log``, lists the demo's nodes."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    @property
    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def nodes(self) -> dict[str, tuple[int, int]]:
        """node id -> (API port, pid), from the lines the demo prints once its nodes are up."""
        return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in NODE_LINE.finditer(self.text)}

    def wait_nodes_up(self, n: int, timeout: float = 60.0) -> dict[str, tuple[int, int]]:
        """Wait until ``n`` nodes are listed and each answers /health with its listed pid."""
        def up() -> dict[str, tuple[int, int]] | None:
            nodes = self.nodes()
            if len(nodes) == n and all(health_pid(port) == pid for port, pid in nodes.values()):
                return nodes
            return None

        return wait_until(up, timeout, what=f"{n} demo nodes up", describe=self.describe)

    def wait_for(self, probe: Callable[[], object], timeout: float, what: str) -> object:
        return wait_until(probe, timeout, what=what, describe=self.describe)

    def describe(self) -> str:
        return f"exit code {self.proc.poll()}; output:\n{self.text[-4000:]}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Demo(Watched):
    """``ringrift-cluster demo ARGS`` with its output in ``cwd/demo.out``, or in a real
    pseudo-terminal (``terminal=True``) that this object reads and can close."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None, terminal: bool = False) -> None:
        self.master = -1
        self.chunks: list[bytes] = []
        log = cwd / "demo.out"
        if terminal:
            self.master, slave = os.openpty()
            proc = subprocess.Popen([sys.executable, "-c", IN_TERMINAL, *DEMO[1:], *args], stdin=slave,
                                    stdout=slave, stderr=slave, start_new_session=True, env=env)
            os.close(slave)
        else:
            with open(log, "wb") as out:
                proc = subprocess.Popen([*DEMO, *args], stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)
        super().__init__(proc, log)

    @property
    def text(self) -> str:
        if self.master < 0 and not self.chunks:
            return super().text
        self.pump()
        return b"".join(self.chunks).decode(errors="replace")

    def wait_for(self, probe: Callable[[], object], timeout: float, what: str) -> object:
        def pumped() -> object:
            self.pump()  # keep reading the terminal while waiting, or the demo blocks writing
            return probe()

        return super().wait_for(pumped, timeout, what)

    def pump(self) -> None:
        """Read what the demo wrote to its terminal so far (it must never block on a full pty)."""
        while self.master >= 0 and select.select([self.master], [], [], 0)[0]:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the demo's side is closed
                return
            if not data:
                return
            self.chunks.append(data)

    def hang_up(self) -> None:
        """Close the terminal: the kernel sends SIGHUP to the demo, as when a window closes."""
        self.pump()
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        super().close()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


def wait_all_gone(pids: list[int], timeout: float, describe: Callable[[], object]) -> None:
    wait_until(lambda: not [p for p in pids if alive(p)], timeout, what=f"processes {pids} gone",
               describe=lambda: f"still alive: {[p for p in pids if alive(p)]}; {describe()}")
