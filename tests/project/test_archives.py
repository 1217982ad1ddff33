"""Unpacking tar archives: the same refusals with and without tarfile's filters (Debian
bookworm's python3, 3.11.2, has none)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from harness.archives import HAS_FILTERS, extract

WAYS = [False, True] if HAS_FILTERS else [False]


def _archive(*members: tuple[tarfile.TarInfo, bytes]) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    buf.seek(0)
    return tarfile.open(fileobj=buf)


def _file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, b""


@pytest.mark.parametrize("filters", WAYS)
def test_files_folders_and_inner_links_are_extracted(tmp_path: Path, filters: bool) -> None:
    with _archive(_file("out/fetchmail", b"\x7fELF", 0o755), _link("out/again", "fetchmail"),
                  _file("out/setuid", b"s", 0o4755)) as tar:
        extract(tar, tmp_path, filters=filters)
    binary = tmp_path / "out" / "fetchmail"
    assert binary.read_bytes() == b"\x7fELF" and binary.stat().st_mode & 0o111
    assert (tmp_path / "out" / "again").resolve() == binary.resolve()
    assert not (tmp_path / "out" / "setuid").stat().st_mode & 0o4000


@pytest.mark.parametrize("filters", WAYS)
def test_an_absolute_name_lands_inside(tmp_path: Path, filters: bool) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with _archive(_file(f"{tmp_path}/evil")) as tar:
        extract(tar, dest, filters=filters)
    assert not (tmp_path / "evil").exists()
    assert (dest / str(tmp_path).lstrip("/") / "evil").is_file()


@pytest.mark.parametrize("filters", WAYS)
@pytest.mark.parametrize("member", [
    _file("../evil"), _file("a/../../evil"),
    _link("link", "/etc/passwd"), _link("a/link", "../../evil"),
], ids=["parent", "nested-parent", "absolute-link", "escaping-link"])
def test_members_landing_outside_are_refused(
        tmp_path: Path, filters: bool, member: tuple[tarfile.TarInfo, bytes]) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with _archive(member) as tar, pytest.raises(tarfile.TarError):
        extract(tar, dest, filters=filters)
    assert not (tmp_path / "evil").exists()


def test_devices_are_refused_without_filters(tmp_path: Path) -> None:
    info = tarfile.TarInfo("dev")
    info.type = tarfile.CHRTYPE
    with _archive((info, b"")) as tar, pytest.raises(tarfile.TarError, match="device"):
        extract(tar, tmp_path, filters=False)
