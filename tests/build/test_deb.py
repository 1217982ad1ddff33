"""harness.deb without a container: staging, control file, Depends merging."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.build.deb import (
    DebSpec,
    add_doc,
    control_text,
    elf_files,
    merge_at_least,
    minimum_of,
    parse_depends,
    stage_tree,
)
from harness.errors import ConfigError


def _spec(**overrides: object) -> DebSpec:
    fields: dict[str, object] = {
        "package": "demo-tool",
        "version": "1.2.3+x-1~deb12.bookworm",
        "summary": "a demo",
        "description": "First paragraph.\n\nSecond paragraph, long enough to be wrapped: "
        + "word " * 30,
        "maintainer": "Jane <jane@example.org>",
    }
    fields.update(overrides)
    return DebSpec(**fields)  # type: ignore[arg-type]


def _dpkg_newer(a: str, b: str) -> bool:
    """Debian's own comparison (the host is Debian: dpkg is there)."""
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")


def test_bad_package_name_or_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="package name"):
        _spec(package="Fetchmail_OAuth")
    with pytest.raises(ConfigError, match="Debian version"):
        _spec(version="next-1")


def test_deb_name_drops_the_epoch() -> None:
    assert _spec(version="2:1.0-1").deb_name("amd64") == "demo-tool_1.0-1_amd64.deb"


def test_control_file_fields_and_wrapped_description() -> None:
    text = control_text(
        _spec(provides=("fetchmail (= 6.4.33)",), conflicts=("fetchmail",)),
        "amd64", "libc6 (>= 2.34)", 123,
    )
    lines = text.splitlines()
    assert lines[:5] == [
        "Package: demo-tool", "Version: 1.2.3+x-1~deb12.bookworm", "Architecture: amd64",
        "Maintainer: Jane <jane@example.org>", "Installed-Size: 123",
    ]
    assert "Provides: fetchmail (= 6.4.33)" in lines and "Conflicts: fetchmail" in lines
    assert not any(line.startswith(("Replaces:", "Homepage:")) for line in lines)  # empty
    desc = lines[lines.index("Description: a demo") + 1:]
    assert desc[0] == " First paragraph." and desc[1] == " ."
    assert len(desc) > 3 and all(line.startswith(" ") and len(line) <= 80 for line in desc)


def test_parse_depends() -> None:
    assert parse_depends("libc6 (>= 2.34), libssl3:amd64 (>= 3.0.0), a | b") == [
        ("libc6", "libc6 (>= 2.34)"), ("libssl3", "libssl3:amd64 (>= 3.0.0)"),
        ("a", "a | b"),
    ]


def test_minimum_of_a_package_in_depends() -> None:
    depends = "libc6 (>= 2.34), libssl3 (>= 3.0.0), libfoo1"
    assert minimum_of(depends, "libssl3") == "3.0.0"
    assert minimum_of(depends, "libfoo1") is None and minimum_of(depends, "libbar") is None


@needs_dpkg
def test_at_least_raises_only_where_it_is_stricter() -> None:
    computed = "libc6 (>= 2.34), libssl3 (>= 3.0.0)"
    assert merge_at_least(computed, {"libssl3": "3.0.20"}, _dpkg_newer) == (
        "libc6 (>= 2.34), libssl3 (>= 3.0.20)")
    assert merge_at_least(computed, {"libc6": "2.31"}, _dpkg_newer) == computed
    assert merge_at_least("libc6", {"libc6": "2.36"}, _dpkg_newer) == "libc6 (>= 2.36)"
    assert merge_at_least("libc6 (>= 2.34)", {"libfoo1": "1.0"}, _dpkg_newer) == (
        "libc6 (>= 2.34), libfoo1 (>= 1.0)")


def _destdir(root: Path) -> Path:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"\x7fELF" + b"\0" * 60)
    (root / "usr/bin/tool").chmod(0o700)
    (root / "usr/bin/toolconf").write_text("#!/bin/sh\n")
    (root / "usr/share/man/man1").mkdir(parents=True)
    (root / "usr/share/man/man1/tool.1").write_text(".TH TOOL 1\n")
    (root / "usr/share/man/man1/toolconf.1").write_text(".TH TOOLCONF 1\n")
    (root / "usr/share/locale/de/LC_MESSAGES").mkdir(parents=True)
    (root / "usr/share/locale/de/LC_MESSAGES/tool.mo").write_bytes(b"mo")
    return root


def test_stage_tree_keeps_what_is_asked_gzips_man_pages_and_fixes_modes(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "stage"
    staged = stage_tree(_destdir(tmp_path / "destdir"), dest, (
        "usr/bin/tool", "usr/share/man/man1/tool.1", "usr/share/locale/*/LC_MESSAGES/tool.mo",
    ))
    assert staged == ["usr/bin/tool", "usr/share/man/man1/tool.1.gz",
                      "usr/share/locale/de/LC_MESSAGES/tool.mo"]
    assert not (dest / "usr/bin/toolconf").exists()
    assert gzip.decompress((dest / "usr/share/man/man1/tool.1.gz").read_bytes()) == (
        b".TH TOOL 1\n")
    assert (dest / "usr/bin/tool").stat().st_mode & 0o777 == 0o755
    assert (dest / "usr/share/locale/de/LC_MESSAGES/tool.mo").stat().st_mode & 0o777 == 0o644
    assert all(p.stat().st_mode & 0o777 == 0o755 for p in dest.rglob("*") if p.is_dir())
    assert elf_files(dest) == ["usr/bin/tool"]


def test_gzipped_files_carry_no_name_or_time(tmp_path: Path) -> None:
    """gzip -n: the same input gives the same bytes (reproducible packages)."""
    first = add_doc(tmp_path / "a", "demo-tool", "changelog", "text\n", compress=True)
    second = add_doc(tmp_path / "b", "demo-tool", "changelog", "text\n", compress=True)
    assert first.name == "changelog.gz"
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[4:8] == b"\0\0\0\0"  # MTIME
    assert not first.read_bytes()[3] & 0x08  # no FNAME


def test_stage_tree_keeps_symlinks_as_links(tmp_path: Path) -> None:
    lib = tmp_path / "destdir/usr/lib/x86_64-linux-gnu/sasl2"
    lib.mkdir(parents=True)
    (lib / "libdemo.so.0.0.0").write_bytes(b"\x7fELF" + b"\0" * 60)
    (lib / "libdemo.so").symlink_to("libdemo.so.0.0.0")
    dest = tmp_path / "stage"
    staged = stage_tree(tmp_path / "destdir", dest, ["usr/lib/*/sasl2/libdemo.so*"])
    assert staged == ["usr/lib/x86_64-linux-gnu/sasl2/libdemo.so",
                      "usr/lib/x86_64-linux-gnu/sasl2/libdemo.so.0.0.0"]
    link = dest / staged[0]
    assert link.is_symlink() and str(link.readlink()) == "libdemo.so.0.0.0"
    assert elf_files(dest) == [staged[1]]  # the link is not analysed or stripped twice
