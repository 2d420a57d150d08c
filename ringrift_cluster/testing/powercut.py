"""A disk that can lose power: a FUSE filesystem that keeps what was not fsynced apart.

Every file's data lives in the filesystem process's memory, as a page cache would, until the
file is fsynced: only then is it written to the backing directory. Killing the filesystem
process is a power cut: whatever no fsync covered is gone, exactly as on a machine that loses
power. Metadata (create, rename, unlink, mkdir) reaches the backing directory at once, which
is kinder than a real disk, so the harness judges data durability, the part our code and the
engine's journal decide. (The technique of Jepsen's LazyFS, much simplified.)

``writeback_s`` models the kernel's periodic writeback: every that many seconds whatever is
dirty reaches the backing directory, so a cut loses only what was written since. Off by default
(the strictest disk: nothing but an fsync makes data durable); with it, software that never
fsyncs still finds its files after a cut and loses only their last seconds, which the history
checker can then count.

    disk = PowerCutDisk(backing, mount)   # needs /dev/fuse, fusermount3 and mfusepy
    disk.mount()
    ...                                   # a node runs with its data dir on `mount`
    disk.cut()                            # unsynced writes are lost; the mount is gone
    disk.mount()                          # what survived, as after a reboot

Run as ``python -m ringrift_cluster.testing.powercut BACKING MOUNT [WRITEBACK_S]`` (the
filesystem process).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .wait import wait_until


class PowerCutDisk:
    """One mount of the lazy filesystem over a backing directory."""

    def __init__(self, backing: str | os.PathLike[str], mount: str | os.PathLike[str],
                 writeback_s: float | None = None) -> None:
        self.backing = Path(backing)
        self.mountpoint = Path(mount)
        self.writeback_s = writeback_s
        self.proc: subprocess.Popen[bytes] | None = None

    def mount(self, timeout: float = 15.0) -> None:
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        log = open(self.backing.parent / f"{self.backing.name}.fuse.log", "ab")
        argv = [sys.executable, "-m", "ringrift_cluster.testing.powercut", str(self.backing), str(self.mountpoint)]
        if self.writeback_s:
            argv.append(str(self.writeback_s))
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        log.close()
        wait_until(lambda: self.mounted() or self.proc.poll() is not None, timeout,  # type: ignore[union-attr]
                   what=f"the lazy filesystem on {self.mountpoint}")
        if not self.mounted():
            raise RuntimeError(f"the lazy filesystem exited with {self.proc.returncode}")  # type: ignore[union-attr]

    def cut(self) -> None:
        """Power off: the filesystem process dies with every unsynced byte, the mount goes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self.unmount()

    def mounted(self) -> bool:
        """From the mount table (a mount whose server died fails every stat, ismount too)."""
        target = str(self.mountpoint.resolve(strict=False))
        with open("/proc/self/mounts") as mounts:
            return any(line.split()[1] == target for line in mounts if len(line.split()) > 1)

    def unmount(self) -> None:
        if self.mounted():
            subprocess.run([shutil.which("fusermount3") or "fusermount3", "-u", "-z", str(self.mountpoint)],
                           check=False, capture_output=True)
        wait_until(lambda: not self.mounted(), 10, what=f"{self.mountpoint} unmounted")

    def stop(self) -> None:
        """A clean shutdown (everything the filesystem holds is lost as in a cut: call only
        after the nodes are stopped)."""
        self.cut()


def _filesystem(backing: str, writeback_s: float | None = None) -> Any:
    from mfusepy import FuseOSError, Operations  # the test harness's own dependency

    class LazyFS(Operations):  # type: ignore[misc]
        """Data in memory until fsync; metadata straight to the backing directory."""

        def __init__(self) -> None:
            self.root = backing
            self.cache: dict[str, bytearray] = {}  # path -> the file's current content
            self.dirty: set[str] = set()  # paths whose content differs from the backing file
            self.lock = threading.RLock()
            if writeback_s:
                threading.Thread(target=self._writeback, args=(writeback_s,), daemon=True).start()

        def _writeback(self, period: float) -> None:
            while True:
                time.sleep(period)
                # The kernel's own dirty pages first (a shared mmap, like pysyncobj's journal, reaches
                # this process only when the kernel writes it back, after about 30 s by default): as
                # a kernel's writeback would, push them here, then persist. Outside the lock: the
                # writes the sync sends are served by this process's other threads.
                os.sync()
                with self.lock:
                    for path in list(self.dirty):
                        try:
                            self._persist(path)
                        except OSError:  # renamed or removed under us: the next round sees it
                            self.dirty.discard(path)

        def _real(self, path: str) -> str:
            return os.path.join(self.root, path.lstrip("/"))

        def _content(self, path: str) -> bytearray:
            if path not in self.cache:
                try:
                    with open(self._real(path), "rb") as f:
                        self.cache[path] = bytearray(f.read())
                except FileNotFoundError:
                    raise FuseOSError(errno.ENOENT) from None
            return self.cache[path]

        def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
            with self.lock:
                try:
                    st = os.lstat(self._real(path))
                except FileNotFoundError:
                    raise FuseOSError(errno.ENOENT) from None
                attrs = {key: getattr(st, key) for key in ("st_atime", "st_ctime", "st_gid", "st_mode",
                                                           "st_mtime", "st_nlink", "st_size", "st_uid")}
                if path in self.cache:
                    attrs["st_size"] = len(self.cache[path])
                return attrs

        def readdir(self, path: str, fh: Any) -> list[str]:
            return [".", ".."] + os.listdir(self._real(path))

        def access(self, path: str, amode: int) -> int:
            if not os.path.lexists(self._real(path)):
                raise FuseOSError(errno.ENOENT)
            return 0

        def open(self, path: str, flags: int) -> int:
            with self.lock:
                if flags & os.O_TRUNC:
                    self.truncate(path, 0)
                else:
                    self._content(path)
            return 0

        def create(self, path: str, mode: int, fi: Any = None) -> int:
            with self.lock:
                os.close(os.open(self._real(path), os.O_CREAT | os.O_WRONLY, mode))
                self.cache[path] = bytearray()
                self.dirty.add(path)
            return 0

        def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
            with self.lock:
                return bytes(self._content(path)[offset:offset + size])

        def write(self, path: str, data: bytes, offset: int, fh: Any) -> int:
            with self.lock:
                content = self._content(path)
                if offset > len(content):
                    content.extend(b"\0" * (offset - len(content)))
                content[offset:offset + len(data)] = data
                self.dirty.add(path)
                return len(data)

        def truncate(self, path: str, length: int, fh: Any = None) -> None:
            with self.lock:
                content = self._content(path)
                if length < len(content):
                    del content[length:]
                else:
                    content.extend(b"\0" * (length - len(content)))
                self.dirty.add(path)

        def fsync(self, path: str, datasync: int, fh: Any) -> int:
            with self.lock:
                if path in self.dirty:
                    self._persist(path)
            return 0

        def _persist(self, path: str) -> None:
            content = self.cache[path]
            with open(self._real(path), "r+b") as f:
                f.write(content)
                f.truncate(len(content))
                f.flush()
                os.fsync(f.fileno())
            self.dirty.discard(path)

        def fsyncdir(self, path: str, datasync: int, fh: Any) -> int:
            return 0  # metadata is already on the backing directory

        def flush(self, path: str, fh: Any) -> int:
            return 0  # close() does not make data durable: only fsync does

        def release(self, path: str, fh: Any) -> int:
            return 0

        def unlink(self, path: str) -> None:
            with self.lock:
                os.unlink(self._real(path))
                self.cache.pop(path, None)
                self.dirty.discard(path)

        def rename(self, old: str, new: str) -> None:
            with self.lock:
                os.rename(self._real(old), self._real(new))
                for path in [p for p in self.cache if p == old or p.startswith(old + "/")]:
                    moved = new + path[len(old):]
                    self.cache[moved] = self.cache.pop(path)
                    if path in self.dirty:
                        self.dirty.discard(path)
                        self.dirty.add(moved)
                    else:
                        self.dirty.discard(moved)

        def mkdir(self, path: str, mode: int) -> None:
            os.mkdir(self._real(path), mode)

        def rmdir(self, path: str) -> None:
            os.rmdir(self._real(path))

        def chmod(self, path: str, mode: int) -> int:
            os.chmod(self._real(path), mode)
            return 0

        def chown(self, path: str, uid: int, gid: int) -> int:
            os.chown(self._real(path), uid, gid)
            return 0

        def utimens(self, path: str, times: Any = None) -> int:
            os.utime(self._real(path), times)
            return 0

        def statfs(self, path: str) -> dict[str, Any]:
            st = os.statvfs(self._real(path))
            return {key: getattr(st, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                      "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    return LazyFS()


def main(argv: list[str]) -> int:
    from mfusepy import FUSE

    backing, mount = argv[:2]
    writeback_s = float(argv[2]) if len(argv) > 2 else None
    FUSE(_filesystem(backing, writeback_s), mount, foreground=True, nothreads=False, default_permissions=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
