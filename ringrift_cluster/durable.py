"""The one rule for every file this package writes: write, fsync, rename, fsync the directory.

After a crash or a power cut the file is either the old one or the whole new one, and a file
just created is still in its directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, IO


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary beside it, then make it durable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_durably(path: str | os.PathLike[str], body: Any) -> None:
    replace_durably(path, lambda f: f.write(json.dumps(body).encode()))
