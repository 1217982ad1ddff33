"""Files and folders written so a reader never sees half of one: a temp copy, then os.replace.

The one way the harness writes a file others may read meanwhile (the series table, cached
results, reports, the remembered upstream) or puts a folder in place (exported builds,
installed series).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _temp_beside(path: Path, *, directory: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` through a temp file beside it."""
    tmp = _temp_beside(path)
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_copy(src: Path, dest: Path) -> None:
    """Copy the file `src` to `dest` through a temp file beside `dest`."""
    tmp = _temp_beside(dest)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_copytree(src: Path, dest: Path, *, leave_out: tuple[str, ...] = ()) -> None:
    """Copy the folder `src` to `dest` (replacing what is there) through a temp folder beside
    it; the old `dest` is removed just before the new one takes its name. Names matching a
    `leave_out` glob are not copied."""
    tmp = _temp_beside(dest, directory=True)
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(*leave_out) if leave_out else None)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
