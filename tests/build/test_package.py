"""harness.fetchmail_package without a container: names, versions, control fields, docs."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.build import package as fp
from harness.errors import ConfigError


def _manifest(**overrides: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "version": "6.4.33", "commit": "0123456789abcdef" * 2 + "01234567",
        "series": "oauth64", "series_hash": "ab" * 32,
        "patches": {"0001-passwordfile.patch": "cd" * 32, "0002-oauthbearer.patch": "ef" * 32},
        "distro": "bookworm", "image": {"tag": "fmh-build:bookworm-123456789abc"},
        "sanitize": False, "key": "k" * 64,
        "libssl": {"soname": "libssl.so.3", "package": "libssl3", "version": "3.0.20",
                   "headers": "0x30000140", "refuses_older": True, "minimum": "3.0.20"},
    }
    manifest.update(overrides)
    return manifest


def test_release_is_read_from_the_version_banner() -> None:
    assert fp.release_of("This is fetchmail release 6.4.33+SSL-SSLv2-SSLv3+NLS.\n") == "6.4.33"
    assert fp.release_of("This is fetchmail release 7.0.0-alpha10+TLS+NLS\n") == "7.0.0-alpha10"
    assert fp.release_of("This is fetchmail release 6.3.0.\n") == "6.3.0"
    with pytest.raises(ConfigError, match="no release"):
        fp.release_of("segmentation fault")


@pytest.mark.parametrize(("manifest", "release", "expected"), [
    ({}, "6.4.33", "6.4.33+oauth64-1~deb12.bookworm"),
    ({"distro": "bullseye", "series": "oauth63-10"}, "6.3.14",
     "6.3.14+oauth63-10-1~deb11.bullseye"),
    ({"distro": "trixie", "series": "oauth65", "version": "6.5.0.beta7"}, "6.5.0.beta7",
     "6.5.0~beta7+oauth65-1~deb13.trixie"),
    ({"series": None, "version": "next"}, "7.0.0-alpha10",
     "7.0.0~alpha10+native.g0123456789-1~deb12.bookworm"),
    ({"series": None}, "6.4.33", "6.4.33+upstream-1~deb12.bookworm"),
])
def test_version_says_release_series_and_suite(manifest: dict[str, Any], release: str,
                                                expected: str) -> None:
    assert fp.deb_version(_manifest(**manifest), release) == expected


def _newer(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_versions_sort_as_debian_sorts_them() -> None:
    """Newer suite after older; a pre-release before its release; a later release after."""
    by_suite = [fp.deb_version(_manifest(distro=d), "6.4.33")
                for d in ("bullseye", "bookworm", "trixie")]
    assert _newer(by_suite[1], by_suite[0]) and _newer(by_suite[2], by_suite[1])
    beta = fp.deb_version(_manifest(series="oauth65"), "6.5.0.beta7")
    assert _newer(beta, by_suite[1])
    assert _newer("6.5.0", fp.debian_upstream("6.5.0.beta7"))
    # Debian's own package is newer than any covered release: why the name differs (see doc)
    assert _newer("6.4.37-1", by_suite[1])


def test_spec_stands_in_for_debians_fetchmail_and_needs_the_headers_libssl() -> None:
    spec = fp.deb_spec(_manifest(), "6.4.33", "Jane <jane@example.org>")
    assert spec.package == "fetchmail-oauth" != "fetchmail"
    assert spec.provides == ("fetchmail (= 6.4.33)",)
    assert spec.conflicts == ("fetchmail",) and spec.replaces == ("fetchmail",)
    assert spec.at_least == {"libssl3": "3.0.20"}
    assert spec.section == "mail" and spec.maintainer == "Jane <jane@example.org>"


def test_libssl_minimum_is_what_the_manifest_says() -> None:
    manifest = _manifest()
    manifest["libssl"].update(refuses_older=False, minimum="1.1.1")  # 6.3.x: no such check
    assert fp.deb_spec(manifest, "6.3.26").at_least == {"libssl3": "1.1.1"}
    manifest["libssl"]["minimum"] = None
    assert fp.deb_spec(manifest, "6.3.26").at_least == {}


def test_sanitizer_builds_are_not_packaged() -> None:
    with pytest.raises(ConfigError, match="sanitizer"):
        fp.deb_spec(_manifest(sanitize=True), "6.4.33")


def test_maintainer_follows_debemail() -> None:
    assert fp.maintainer({}) == fp.DEFAULT_MAINTAINER
    assert fp.maintainer({"DEBEMAIL": "j@example.org"}) == "j@example.org"
    assert fp.maintainer({"DEBEMAIL": "j@example.org", "DEBFULLNAME": "Jane Doe"}) == (
        "Jane Doe <j@example.org>")


def test_project_url_comes_from_pyproject() -> None:
    assert fp.project_url().startswith("https://")


def test_staged_tree_ships_binary_man_page_locales_and_docs(tmp_path: Path) -> None:
    destdir = tmp_path / "destdir"
    for rel, data in {
        "usr/bin/fetchmail": b"\x7fELF\0\0\0\0",
        "usr/bin/fetchmailconf": b"#!/bin/sh\n",
        "usr/share/man/man1/fetchmail.1": b".TH fetchmail 1\n",
        "usr/share/man/man1/fetchmailconf.1": b".TH fetchmailconf 1\n",
        "usr/share/locale/de/LC_MESSAGES/fetchmail.mo": b"mo",
        "usr/share/doc/fetchmail/COPYING": b"GNU GENERAL PUBLIC LICENSE\n",
        "usr/share/doc/fetchmail/NEWS": b"fetchmail-6.4.33 (released 2022-07-16)\n",
    }.items():
        (destdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (destdir / rel).write_bytes(data)
    manifest = _manifest()
    spec = fp.deb_spec(manifest, "6.4.33")
    dest = tmp_path / "tree"
    fp.stage(destdir, dest, manifest, "6.4.33", spec)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    doc = "usr/share/doc/fetchmail-oauth"
    assert files == sorted([
        "usr/bin/fetchmail", "usr/share/man/man1/fetchmail.1.gz",
        "usr/share/locale/de/LC_MESSAGES/fetchmail.mo", f"{doc}/README.Debian",
        f"{doc}/changelog.gz", f"{doc}/copyright", f"{doc}/manifest.json",
    ])
    readme = (dest / doc / "README.Debian").read_text()
    assert "Patch series: oauth64" in readme and "0002-oauthbearer.patch" in readme
    assert fp.project_url() in readme and "apt install fetchmail" in readme
    assert "GNU GENERAL PUBLIC LICENSE" in (dest / doc / "copyright").read_text()
    assert gzip.decompress((dest / doc / "changelog.gz").read_bytes()).startswith(b"fetchmail-")
    assert json.loads((dest / doc / "manifest.json").read_text()) == manifest
