"""Unpacking tar archives safely on every Python the project supports.

tarfile's extraction filters arrived in 3.11.4 (and 3.12); Debian bookworm's python3 is 3.11.2.
There, each member is checked by hand the way the `data` filter would refuse it.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

HAS_FILTERS = hasattr(tarfile, "data_filter")


class UnsafeArchive(tarfile.TarError):
    """A member that would land outside the destination, or is not a file, folder or link."""


def extract(tar: tarfile.TarFile, dest: Path, *, filters: bool = HAS_FILTERS) -> None:
    """Extract every member of `tar` under `dest` (the `data` filter's rules either way)."""
    if filters:
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    members = tar.getmembers()
    for member in members:
        _check(member, root)
    tar.extractall(dest, members=members)  # every member checked above


def _check(member: tarfile.TarInfo, root: Path) -> None:
    member.name = member.name.lstrip("/")  # as the filter does: /a/b lands in dest/a/b
    name = PurePosixPath(member.name)
    if ".." in name.parts:
        raise UnsafeArchive(f"{member.name!r} would land outside {root}")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchive(f"{member.name!r} is a device or special file")
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        base = root / name.parent if member.issym() else root
        if link.is_absolute() or not (base / link).resolve().is_relative_to(root):
            raise UnsafeArchive(f"{member.name!r} links outside {root}: {member.linkname!r}")
    if member.mode & 0o7000 or member.mode & 0o022:  # setuid/setgid/sticky, group/other write
        member.mode &= ~0o7022
