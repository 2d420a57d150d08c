"""Prometheus's own discovery: a file_sd targets file, and the http_sd document of /sd/targets."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from ..model import NodeId
from .base import DiscoveryError, Target, TargetSet, parse_groups, render_groups

MAX_FILE_BYTES = 16 << 20  # far beyond any cluster; a bigger file is not ours


class HttpSd(TargetSet):
    """``GET /sd/targets`` in the ``http_sd_config`` format: served from memory, nothing to write."""

    name = "http_sd"

    def document(self) -> list[dict[str, Any]]:
        return render_groups(self.targets)

    async def list(self) -> dict[NodeId, Target]:
        # What a scrape of /sd/targets returns, through the same rendering and parsing.
        return parse_groups(json.loads(json.dumps(self.document())), "http_sd")

    async def flush(self) -> None:
        self.dirty = False


class FileSd(TargetSet):
    """A ``file_sd_configs`` JSON file, replaced atomically (write, fsync, rename, fsync dir) so
    Prometheus never reads half of one."""

    name = "file_sd"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.writes = 0

    async def list(self) -> dict[NodeId, Target]:
        return await asyncio.to_thread(read_targets, self.path)

    async def flush(self) -> None:
        if not self.dirty:
            return
        text = json.dumps(render_groups(self.targets), indent=2) + "\n"
        self.dirty = False
        try:
            await asyncio.to_thread(write_atomically, self.path, text)
        except BaseException:
            self.dirty = True  # still owed: the next flush tries again
            raise
        self.writes += 1


def read_targets(path: Path) -> dict[NodeId, Target]:
    """Parse a targets file; raises DiscoveryError (missing, unreadable, corrupted)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise DiscoveryError(f"{path}: cannot read ({e.strerror or e})") from e
    if len(raw) > MAX_FILE_BYTES:
        raise DiscoveryError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise DiscoveryError(f"{path}: not valid JSON ({e})") from None
    return parse_groups(document, str(path))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, rename it over ``path`` and
    fsync the directory. World-readable: Prometheus usually runs as another user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            data = text.encode()
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
