"""Private files: permission checks, crash-safe atomic writes (temp, fsync, rename, fsync dir)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from pathlib import Path

from tokens.errors import ConfigError

TMP_SUFFIX = ".tmp"


def check_private(path: Path) -> None:
    """Refuse a file that group or others may read or write; the message has the fix."""
    mode = os.stat(path).st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(
            f"{path} is accessible by group/others (mode {stat.S_IMODE(mode):04o}); "
            f"it holds secrets. Fix: chmod 600 {path}"
        )


def read_secret(path: Path) -> str | None:
    """The single-line secret in `path`, or None when the file is missing or empty."""
    try:
        check_private(path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    value = text.strip()
    if "\n" in value:
        raise ConfigError(f"{path} must hold exactly one line (a token)")
    return value or None


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so readers see the old or the new content, never a mix."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temps(path: Path, older_than: float = 60.0) -> None:
    """Delete temp files a killed writer left next to `path` (call while holding its lock)."""
    cutoff = time.time() - older_than
    for leftover in path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
