"""Private files: permission checks, crash-safe atomic writes (temp, fsync, rename, fsync dir)."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

from tokens.errors import ConfigError

TMP_SUFFIX = ".tmp"
MKSTEMP_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def check_private(path: Path, *, group_ok: bool = False) -> None:
    """Refuse a non-file, or a file that group (unless `group_ok`) or others may read or
    write; the message has the fix."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{path} is a directory, not a file: give the path of a file in it")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path} is not a regular file")
    perms = stat.S_IMODE(mode)
    if perms & (0o007 if group_ok else 0o077):
        who = "others" if group_ok else "group/others"
        fix = "chmod o-rwx" if group_ok else "chmod 600"
        raise ConfigError(
            f"{path} is accessible by {who} (mode {perms:04o}); it holds secrets. Fix: {fix} {path}"
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


def ensure_private_dir(directory: Path) -> None:
    """Create `directory` and any missing parents 0700 (a token's directory, a lock's)."""
    missing = []
    here = directory
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(level, 0o700)
            os.chmod(level, 0o700)  # mkdir's mode is reduced by the umask


def atomic_write(
    path: Path, data: bytes, mode: int = 0o600, owner: tuple[int, int] | None = None
) -> None:
    """Replace `path` with `data` so readers see the old or the new content, never a mix.
    `owner` (uid, gid) is given to the new file where this process may (see keep_owner)."""
    import tempfile

    directory = path.parent
    ensure_private_dir(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            keep_owner(fd, owner)
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


def keep_owner(fd: int, owner: tuple[int, int]) -> None:
    """Give an open file the (uid, gid) of the file it replaces: both as root, the group as
    a member of it; otherwise the new file stays ours."""
    for uid, gid in (owner, (-1, owner[1])):
        try:
            os.fchown(fd, uid, gid)
            return
        except PermissionError:
            continue


def fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temps(path: Path, older_than: float = 60.0) -> None:
    """Delete temp files a killed writer left next to `path` (call while holding its lock).

    Names are compared as strings (never as a glob: `path` may contain `*` or `[`)."""
    cutoff = time.time() - older_than
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(TMP_SUFFIX)):
            continue
        middle = name[len(prefix) : -len(TMP_SUFFIX)]
        if len(middle) != 8 or not set(middle) <= MKSTEMP_CHARS:
            continue  # mkstemp's 8 random characters, nothing else
        leftover = path.parent / name
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
