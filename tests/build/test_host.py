"""harness.host: the host's suite and the libssl warning for a raw binary."""

from __future__ import annotations

import ctypes.util
from pathlib import Path
from typing import Any

import pytest

from harness.build.distros import Distro
from harness.build.host import default_distro, libssl_warning, openssl_number, os_release

SUPPORTED: tuple[Distro, ...] = ("bullseye", "bookworm", "trixie")


def _os_release(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "os-release"
    path.write_text(text)
    return path


def test_default_distro_is_the_hosts_supported_suite(tmp_path: Path) -> None:
    path = _os_release(tmp_path, 'ID=debian\nVERSION_CODENAME=trixie\nPRETTY_NAME="Debian 13"\n')
    assert default_distro(SUPPORTED, path) == ("trixie", "this host's suite")


def test_default_distro_falls_back_to_bookworm_and_says_why(tmp_path: Path) -> None:
    suite, why = default_distro(SUPPORTED, _os_release(tmp_path, "ID=ubuntu\n"
                                                       "VERSION_CODENAME='jammy'\n"))
    assert suite == "bookworm" and "ubuntu jammy" in why
    suite, why = default_distro(SUPPORTED, tmp_path / "missing")
    assert suite == "bookworm" and "unknown" in why


def test_os_release_ignores_comments_and_junk(tmp_path: Path) -> None:
    path = _os_release(tmp_path, "# comment\nnonsense\nID=\"debian\"\n")
    assert os_release(path) == {"ID": "debian"}


def _manifest(headers: str = "0x30000140", refuses: bool = True) -> dict[str, Any]:
    return {"version": "6.4.33", "distro": "bookworm", "libssl": {
        "soname": "libssl.so.3", "package": "libssl3", "version": "3.0.20",
        "headers": headers, "refuses_older": refuses}}


def test_older_host_libssl_warns_with_the_three_ways_out() -> None:
    text = libssl_warning(_manifest(), "trixie", host_number=0x30000130)
    assert text is not None
    assert "0x30000130 is older than" in text and "0x30000140" in text
    assert "--deb" in text and "apt install libssl3" in text and "--distro trixie" in text


def test_same_suite_does_not_suggest_building_for_it_again() -> None:
    text = libssl_warning(_manifest(), "bookworm", host_number=0x30000130)
    assert text is not None and "--distro" not in text


def test_equal_or_newer_host_libssl_is_fine() -> None:
    assert libssl_warning(_manifest(), "bookworm", host_number=0x30000140) is None
    assert libssl_warning(_manifest(), "bookworm", host_number=0x30500090) is None


def test_a_binary_that_does_not_refuse_older_openssl_gets_no_warning() -> None:
    assert libssl_warning(_manifest(refuses=False), "bookworm", host_number=0x30000130) is None


def test_missing_soname_on_the_host_warns() -> None:
    manifest = _manifest()
    manifest["libssl"]["soname"] = "libssl.so.0.9.7-not-here"
    text = libssl_warning(manifest, None)
    assert text is not None and "has no libssl.so.0.9.7-not-here" in text
    assert "--distro SUITE" in text


def test_a_build_without_libssl_gets_no_warning() -> None:
    assert libssl_warning({"distro": "bookworm", "libssl": None}, "bookworm") is None


@pytest.mark.skipif(ctypes.util.find_library("ssl") is None, reason="host has no libssl")
def test_openssl_number_reads_the_hosts_library() -> None:
    import ssl

    # the ssl module reports the same library's OPENSSL_VERSION_NUMBER
    name = "libssl.so.3" if ssl.OPENSSL_VERSION_INFO[0] >= 3 else "libssl.so.1.1"
    assert openssl_number(name) == ssl.OPENSSL_VERSION_NUMBER
