"""Build: real container builds of fetchmail, the build cache, patch and compile failures."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness import paths
from harness.build import host
from harness.build.builder import (
    BuildResult,
    BuildSpec,
    build,
    diagnose,
    export,
    images,
    plan_build,
)
from harness.cli import main
from harness.errors import BuildError, PatchError
from harness.series.buildfixes import fixes_for
from harness.source.mirror import FetchmailSource
from harness.source.versions import Version
from tests.helpers.patchkit import format_patch, write_series, write_table

V = Version.parse
BANNER = 'printf(GT_("This is fetchmail release %s"), VERSION);'


class _NoEngine:
    """A docker client stand-in that fails the test if anything touches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was used ({name}) for a build that should be cached")


def _series_editing(tree: Path, root: Path, name: str, old: str, new: str) -> Path:
    text = (tree / "fetchmail.c").read_text()
    assert old in text
    patch = format_patch(name, [("fetchmail.c", text, text.replace(old, new, 1))])
    write_series(root, name, {"0001-edit.patch": patch})
    write_table(root, [(name, "6.4.33", "6.4.33", "fuzz0")])
    return root


@pytest.fixture(scope="module")
def plain(docker_engine: None, shared_source: FetchmailSource, session_cache: Path) -> BuildResult:
    """fetchmail 6.4.33 on bookworm, no series, built once per session."""
    return build(BuildSpec(V("6.4.33"), "bookworm"), source=shared_source, cache=session_cache)


@pytest.mark.docker
@pytest.mark.slow
def test_plain_build_exports_binary_log_version_and_manifest(
    plain: BuildResult, shared_source: FetchmailSource, session_cache: Path
) -> None:
    assert plain.dist_dir.parent == session_cache / "builds"
    assert plain.dist_dir.name.startswith("6.4.33-upstream-bookworm-")
    assert os.access(plain.binary, os.X_OK) and plain.binary.read_bytes()[:4] == b"\x7fELF"
    assert "This is fetchmail release 6.4.33" in plain.version_output
    assert (plain.dist_dir / "version.txt").read_text() == plain.version_output
    log = plain.log.read_text()
    for step in ("bootstrap", "configure", "make", "install"):
        assert f"=== {step} exited 0" in log
    assert "no series" in (plain.dist_dir / "apply-report.txt").read_text()
    manifest = json.loads((plain.dist_dir / "manifest.json").read_text())
    assert manifest["version"] == "6.4.33" and manifest["series"] is None
    assert manifest["commit"] == shared_source.commit(Version.parse("6.4.33"))
    assert manifest["image"]["tag"].startswith("fmh-build:bookworm-")
    assert manifest["image"]["id"].startswith("sha256:") and manifest["key"] == plain.key


@pytest.mark.docker
@pytest.mark.slow
def test_build_keeps_the_install_tree_and_names_the_libraries_it_needs(
    plain: BuildResult,
) -> None:
    destdir = plain.dist_dir / "destdir"
    for rel in ("usr/bin/fetchmail", "usr/share/man/man1/fetchmail.1",
                "usr/share/locale/de/LC_MESSAGES/fetchmail.mo",
                "usr/share/doc/fetchmail/COPYING", "usr/share/doc/fetchmail/NEWS"):
        assert (destdir / rel).is_file(), rel
    manifest = json.loads((plain.dist_dir / "manifest.json").read_text())
    by_soname = {lib["soname"]: lib for lib in manifest["libraries"]}
    assert set(by_soname) >= {"libssl.so.3", "libcrypto.so.3", "libc.so.6"}
    assert by_soname["libssl.so.3"]["package"] == "libssl3"
    assert by_soname["libc.so.6"]["package"] == "libc6"
    ssl = manifest["libssl"]
    assert ssl["package"] == "libssl3" and ssl["version"] == manifest["openssl"]
    # OPENSSL_VERSION_NUMBER 0xMNN00PP0 of OpenSSL 3: the headers' version, as fetchmail sees it
    major, minor, patch = (int(x) for x in ssl["version"].split("."))
    assert int(ssl["headers"], 16) == major << 28 | minor << 20 | patch << 4
    assert ssl["refuses_older"] is True  # 6.4.x checks the run-time library
    assert ssl["minimum"] == ssl["version"]  # so it needs at least the image's libssl


@pytest.mark.docker
@pytest.mark.slow
def test_second_build_is_served_from_the_cache_without_an_engine(
    plain: BuildResult, shared_source: FetchmailSource, session_cache: Path, tmp_path: Path
) -> None:
    again = build(plain.spec, source=shared_source, cache=session_cache,
                  client=_NoEngine())
    assert again.cached and not plain.cached
    assert plan_build(plain.spec, source=shared_source).key == plain.key
    assert (again.key, again.dist_dir, again.version_output) == (
        plain.key, plain.dist_dir, plain.version_output)
    copied = export(again, tmp_path / "dist")
    assert copied == tmp_path / "dist" / "6.4.33-upstream-bookworm"
    assert (copied / "fetchmail").read_bytes() == plain.binary.read_bytes()
    assert not (copied / "destdir").exists()  # the tree leaves as --tarball or --deb


@pytest.mark.docker
@pytest.mark.slow
def test_build_command_prints_where_the_binary_is(
    plain: BuildResult, session_cache: Path, fetchmail_upstream: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FETCHMAIL_HARNESS_CACHE", str(session_cache))
    dist = tmp_path / "dist"
    args = ["build", "6.4.33", "--no-series", "--distro", "bookworm", "--upstream",
            fetchmail_upstream, "--dist", str(dist)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6.4.33-upstream-bookworm: cached" in out
    assert f"binary:  {dist / '6.4.33-upstream-bookworm' / 'fetchmail'}" in out
    assert "This is fetchmail release 6.4.33" in out
    assert "distro:" not in out  # chosen, so not explained


@pytest.mark.docker
@pytest.mark.slow
def test_default_distro_is_said_and_an_older_host_libssl_is_warned_about(
    plain: BuildResult, session_cache: Path, fetchmail_upstream: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """On a host that is no supported suite the build is for bookworm, and says so; its
    binary needs the image's libssl, so a host with an older one is told what to do."""
    monkeypatch.setenv("FETCHMAIL_HARNESS_CACHE", str(session_cache))
    (tmp_path / "os-release").write_text("ID=ubuntu\nVERSION_CODENAME=jammy\n")
    monkeypatch.setattr(host, "OS_RELEASE", tmp_path / "os-release")
    monkeypatch.setattr(host, "openssl_number", lambda soname: 0x30000010)  # 3.0.1
    args = ["build", "6.4.33", "--no-series", "--upstream", fetchmail_upstream]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "distro:  bookworm (default; this host (ubuntu jammy) is no suite" in captured.out
    assert "6.4.33-upstream-bookworm: cached" in captured.out
    warning = captured.err
    assert "warning: this host's OpenSSL 0x30000010 is older than" in warning
    assert "--deb" in warning and "apt install libssl3" in warning
    assert "--distro SUITE" in warning


@pytest.mark.docker
@pytest.mark.slow
def test_build_deb_and_tarball_land_in_dist_with_the_apt_command(
    plain: BuildResult, session_cache: Path, fetchmail_upstream: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FETCHMAIL_HARNESS_CACHE", str(session_cache))
    monkeypatch.setattr(host, "openssl_number", lambda soname: 0x30000010)
    dist = tmp_path / "dist"
    args = ["build", "6.4.33", "--no-series", "--distro", "bookworm", "--upstream",
            fetchmail_upstream, "--deb", "--tarball", "--dist", str(dist)]
    assert main(args) == 0
    captured = capsys.readouterr()
    name = "fetchmail-oauth_6.4.33+upstream-1~deb12.bookworm_amd64"
    assert sorted(p.name for p in dist.iterdir()) == [f"{name}.deb", f"{name}.tar.gz"]
    assert f"deb:     {dist / (name + '.deb')}" in captured.out
    assert f"install: sudo apt install {dist / (name + '.deb')}" in captured.out
    assert "Depends: libc6 (>= " in captured.out and "libssl3 (>= " in captured.out
    assert f"tarball: {dist / (name + '.tar.gz')}" in captured.out
    assert "warning" not in captured.err  # the .deb brings its libssl along
    assert main([*args, "--sanitize"]) == 2


@pytest.mark.docker
def test_broken_series_is_a_patch_error_before_any_container(
    shared_source: FetchmailSource, session_cache: Path, tmp_path: Path
) -> None:
    root = tmp_path / "patches"
    bad = format_patch("Does not apply", [("imap.c", "no\nsuch\nlines\n", "no\nsuch\ntext\n")])
    write_series(root, "broken", {"0001-bad.patch": bad})
    write_table(root, [("broken", "6.4.33", "6.4.33", "fuzz0")])
    spec = BuildSpec(V("6.4.33"), "bookworm", "broken")
    with pytest.raises(PatchError, match=r"failed  0001-bad.patch: imap.c: hunk #1") as info:
        build(spec, source=shared_source, cache=session_cache, patches_dir=root,
              client=_NoEngine())
    assert not list((session_cache / "builds").glob("6.4.33-broken-bookworm-*"))
    report = Path(str(info.value).split("kept: ", 1)[1].strip())
    assert report.name == "apply-report.txt" and "FAILED" in report.read_text()


@pytest.mark.docker
@pytest.mark.slow
def test_series_build_carries_the_patch_into_the_binary(
    plain: BuildResult, shared_source: FetchmailSource, session_cache: Path, tmp_path: Path
) -> None:
    tree = shared_source.worktree(Version.parse("6.4.33"))
    root = _series_editing(tree, tmp_path / "patches", "banner", BANNER,
                           BANNER.replace("fetchmail release", "fetchmail (fmh-test) release"))
    result = build(BuildSpec(V("6.4.33"), "bookworm", "banner"), source=shared_source,
                   cache=session_cache, patches_dir=root)
    assert not result.cached and result.key != plain.key
    assert "This is fetchmail (fmh-test) release 6.4.33" in result.version_output
    assert "clean   0001-edit.patch" in (result.dist_dir / "apply-report.txt").read_text()
    manifest = json.loads((result.dist_dir / "manifest.json").read_text())
    assert manifest["series"] == "banner" and list(manifest["patches"]) == ["0001-edit.patch"]


@pytest.mark.docker
@pytest.mark.slow
def test_compile_failure_is_a_build_error_with_log_and_last_lines(
    docker_engine: None, shared_source: FetchmailSource, session_cache: Path, tmp_path: Path
) -> None:
    tree = shared_source.worktree(Version.parse("6.4.33"))
    root = _series_editing(tree, tmp_path / "patches", "breaks", "int main(int argc, char **argv)",
                           "#error fmh-test-broken\nint main(int argc, char **argv)")
    with pytest.raises(BuildError, match="make failed") as info:
        build(BuildSpec(V("6.4.33"), "bookworm", "breaks"), source=shared_source,
              cache=session_cache, patches_dir=root)
    message = str(info.value)
    assert "fmh-test-broken" in message  # the last lines of the log
    log_path = Path(message.split("log: ", 1)[1].splitlines()[0])
    assert log_path.is_file() and "#error fmh-test-broken" in log_path.read_text()
    assert not list((session_cache / "builds").glob("6.4.33-breaks-bookworm-*/manifest.json"))


@pytest.mark.docker
@pytest.mark.slow
def test_fetchmail_6_3_26_builds_or_says_precisely_why_not(
    docker_engine: None, shared_source: FetchmailSource, session_cache: Path
) -> None:
    try:
        result = build(BuildSpec(V("6.3.26"), "bookworm"), source=shared_source,
                       cache=session_cache)
    except BuildError as exc:
        assert "predates the OpenSSL 1.1 API" in str(exc)
    else:
        assert "This is fetchmail release 6.3.26" in result.version_output
        manifest = json.loads((result.dist_dir / "manifest.json").read_text())
        assert manifest["series"] is None  # unpatched, but with the recipe's build fixes
        assert manifest["build_fixes"] == ["openssl-1.1_6.3.22-6.3.26.patch",
                                           "starttls_6.3.20-6.3.26.patch"]
        report = (result.dist_dir / "apply-report.txt").read_text()
        assert "series build-fixes" in report and "OK: 2 patches applied" in report
        # 6.3 does not refuse an older run-time OpenSSL: its minimum is what its symbols need
        ssl = manifest["libssl"]
        assert ssl["refuses_older"] is False and ssl["minimum"] not in (None, ssl["version"])


@pytest.mark.docker
@pytest.mark.slow
def test_sanitized_build_links_asan_and_ubsan(
    plain: BuildResult, shared_source: FetchmailSource, session_cache: Path
) -> None:
    result = build(BuildSpec(V("6.4.33"), "bookworm", sanitize=True), source=shared_source,
                   cache=session_cache)
    assert result.key != plain.key and result.spec.identifier == "6.4.33-upstream-bookworm+asan"
    binary = result.binary.read_bytes()
    assert b"__asan_init" in binary and b"__ubsan_handle" in binary
    assert "This is fetchmail release 6.4.33" in result.version_output


def test_build_fixes_follow_the_release() -> None:
    """The recipe's own patches replace the old -D compat flags, per release."""
    def fixes(version: str, with_series: bool = True) -> list[str]:
        return [f.patch.name.split("_")[0] for f in fixes_for(Version.parse(version), with_series)]

    assert fixes("6.3.26") == ["openssl-1.1", "starttls"]
    assert fixes("6.3.0") == ["openssl-1.1", "starttls"]
    assert fixes("6.4.0") == ["bison-3.8", "openssl3-client-key"]
    assert fixes("6.4.23") == ["bison-3.8"]
    assert fixes("6.4.33") == []
    assert fixes("6.5.0.beta7") == ["meson-cmake-sources"]
    assert fixes("6.5.0.beta7", with_series=False) == []  # it lists the series' own files
    assert fixes("next") == []


def test_diagnose_names_the_openssl_cause() -> None:
    line = "/b/socket.c:917: undefined reference to `SSLv3_client_method'"
    cause = diagnose(f"gcc ...\n{line}\ncollect2: error", "3.0.15")
    assert cause == ("calls SSLv3_client_method, which the distro's OpenSSL 3.0.15 no longer "
                     "provides: this fetchmail predates the OpenSSL 1.1 API")
    assert diagnose("error: 'yytoknum' undeclared", "3.0.15") is None
    autoconf = "configure.ac:20: error: Autoconf version 2.71 or higher is required"
    assert diagnose(autoconf, "1.1.1w") == (
        "needs Autoconf 2.71 or newer, which this distro does not have: build it on a newer "
        "distro")


def test_image_tag_follows_dockerfile_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = images.dockerfile_hash("bookworm")
    assert images.dockerfile_hash("bullseye") != real
    (tmp_path / "Dockerfile").write_text(
        (paths.CONTAINERS_DIR / "Dockerfile").read_text() + "RUN true\n")
    monkeypatch.setattr(paths, "CONTAINERS_DIR", tmp_path)
    assert images.dockerfile_hash("bookworm") != real


def test_building_an_uncovered_release_is_refused_and_says_what_helps(
    fetchmail_upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    isolated_cache: Path,
) -> None:
    """No silent unpatched build: a user asking for an OAuth fetchmail must not get one
    without OAuth. Refused before any engine or build (nothing lands in the cache)."""
    write_series(tmp_path, "demo", {"0001-a.patch": "Subject: A\n"}, base="6.4.22")
    write_table(tmp_path, [("demo", "6.4.22", "6.4.22", "fuzz0")])
    common = ["--upstream", fetchmail_upstream, "--patches-dir", str(tmp_path)]
    assert main(["build", "6.4.33", *common]) == 2
    err = capsys.readouterr().err
    assert "no patch series covers fetchmail 6.4.33" in err
    assert "fetchmail-harness uncovered" in err and "rebase --onto 6.4.33" in err
    assert "--no-series" in err
    assert not (isolated_cache / "builds").exists()


def test_building_a_release_with_known_security_holes_needs_the_flag(
    fetchmail_upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    isolated_cache: Path,
) -> None:
    """Refused before any engine or build unless --allow-insecure-release."""
    write_series(tmp_path, "demo", {"0001-a.patch": "Subject: A\n"}, base="6.4.21")
    write_table(tmp_path, [("demo", "6.4.21", "6.4.21", "fuzz0")])
    table = tmp_path / "series.toml"
    table.write_text(table.read_text() + '[[advisory]]\nid = "fetchmail-SA-2021-02"\n'
                     'cve = "CVE-2021-39272"\nlast_affected = "6.4.21"\n'
                     'summary = "STARTTLS bypass"\nurl = "https://example.org/sa"\n')
    common = ["--upstream", fetchmail_upstream, "--patches-dir", str(tmp_path)]
    assert main(["build", "6.4.21", *common]) == 2
    err = capsys.readouterr().err
    assert "WARNING: fetchmail 6.4.21 has known security holes" in err
    assert "fetchmail-SA-2021-02 (CVE-2021-39272), releases up to 6.4.21" in err
    assert "--allow-insecure-release" in err
    assert main(["build", "6.4.21", "--no-series", *common]) == 2  # unpatched is no safer
    assert not (isolated_cache / "builds").exists()


@pytest.mark.docker
@pytest.mark.slow
def test_a_build_from_reused_pieces_is_the_same_binary(
    plain: BuildResult, shared_source: FetchmailSource, session_cache: Path, tmp_path: Path
) -> None:
    """Bootstrap outputs, config.cache and ccache of the first build serve a second one
    (a cache without that build): every piece is reused, the binary is byte-identical."""
    cache = tmp_path / "cache"
    for piece in ("ccache", "autoreconf", "configure"):
        shutil.copytree(session_cache / piece, cache / piece)
    again = build(plain.spec, source=shared_source, cache=cache)
    assert not again.cached
    manifest = json.loads((again.dist_dir / "manifest.json").read_text())
    assert manifest["reused"] == {"autoreconf": True, "configure_cache": True}
    assert manifest["ccache"]["misses"] == 0 and manifest["ccache"]["hits"] > 40
    log = again.log.read_text()
    assert "automake" not in log.split("=== make:", 1)[1], "make regenerated the bootstrap"
    assert again.binary.read_bytes() == plain.binary.read_bytes()
