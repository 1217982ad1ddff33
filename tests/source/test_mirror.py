"""Sources: the bare mirror, versions, resolve, worktrees, offline use, corrupt caches, tarballs."""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
from pathlib import Path

import pytest

from harness import paths
from harness.cli import main
from harness.errors import ConfigError, SourceError
from harness.source.mirror import FetchmailSource, configured_upstream, release_versions
from harness.source.tarball import TarballSource
from harness.source.versions import Version
from tests.helpers.patchkit import write_series, write_table

UNREACHABLE = "/nonexistent/fetchmail.git"


def _v(text: str) -> Version:
    return Version.parse(text)


def test_release_versions_keeps_6x_releases_betas_and_next() -> None:
    tags = ["RELEASE_6-4-33", "RELEASE_6-3-26", "6.5.0.beta7", "RELEASE_5-9-0",
            "7.0.0-alpha8", "6.5.0.dev20200711a", "RELEASE_6-3-2_4678", "BRANCH_6-3"]
    got = release_versions(tags, ["next", "legacy_64"])
    assert [str(v) for v in got] == ["6.3.26", "6.4.33", "6.5.0.beta7", "next"]
    assert release_versions(["RELEASE_6-4-33"], ["legacy_64"]) == [_v("6.4.33")]


def test_mirror_into_isolated_cache_lists_versions(
    fetchmail_upstream: str, isolated_cache: Path
) -> None:
    source = FetchmailSource(fetchmail_upstream)
    versions = source.versions()
    assert source.mirror == paths.mirror_dir(isolated_cache)
    assert (source.mirror / "HEAD").is_file() and not (source.mirror / ".git").exists()
    for name in ("6.3.26", "6.4.0", "6.4.33", "6.5.0.beta7", "next"):
        assert _v(name) in versions
    assert versions == sorted(versions)
    assert not any(str(v).startswith(("5.", "7.")) for v in versions)


def test_file_url_upstream_works_like_a_path(fetchmail_upstream: str) -> None:
    if "://" in fetchmail_upstream:
        pytest.skip("upstream is already a URL")
    source = FetchmailSource(f"file://{Path(fetchmail_upstream).resolve()}")
    assert _v("6.4.33") in source.versions()


def test_resolve_accepts_tag_names_and_rejects_unknown_with_suggestions(
    fetchmail_upstream: str,
) -> None:
    source = FetchmailSource(fetchmail_upstream)
    assert source.resolve("RELEASE_6-4-33") == _v("6.4.33")
    assert source.resolve("next").branch == "next"
    with pytest.raises(ConfigError, match=r"unknown fetchmail version '6\.4\.34'.*6\.4\.3"):
        source.resolve("6.4.34")
    with pytest.raises(ConfigError, match="unknown fetchmail version 'bogus'"):
        source.resolve("bogus")


def test_commit_of_a_version_is_its_tag(fetchmail_upstream: str) -> None:
    source = FetchmailSource(fetchmail_upstream)
    expected = subprocess.check_output(
        ["git", "--git-dir", str(source.ensure_mirror().git_dir), "rev-parse",
         "RELEASE_6-4-33^{commit}"], text=True,
    ).strip()
    assert source.commit(_v("6.4.33")) == expected


def test_existing_mirror_is_used_when_upstream_is_unreachable(
    fetchmail_upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    FetchmailSource(fetchmail_upstream).ensure_mirror()
    offline = FetchmailSource(UNREACHABLE)
    assert _v("6.4.33") in offline.versions()
    with caplog.at_level(logging.WARNING):
        assert offline.update() is False
    assert "unreachable" in caplog.text and UNREACHABLE in caplog.text
    assert FetchmailSource(fetchmail_upstream).update() is True


def test_unreachable_upstream_without_mirror_is_a_clear_error(isolated_cache: Path) -> None:
    with pytest.raises(SourceError, match="cannot mirror fetchmail from /nonexistent") as info:
        FetchmailSource(UNREACHABLE).versions()
    assert "--upstream" in str(info.value)
    assert not paths.mirror_dir(isolated_cache).exists()
    assert not list(paths.mirror_dir(isolated_cache).parent.glob(".clone-*"))  # no debris


def test_corrupt_mirror_is_recloned(fetchmail_upstream: str, isolated_cache: Path) -> None:
    mirror = paths.mirror_dir(isolated_cache)
    mirror.mkdir(parents=True)
    (mirror / "junk").write_text("not a repository")
    assert _v("6.4.33") in FetchmailSource(fetchmail_upstream).versions()
    assert not (mirror / "junk").exists() and (mirror / "HEAD").is_file()


def test_corrupt_mirror_with_unreachable_upstream_says_how_to_fix(isolated_cache: Path) -> None:
    mirror = paths.mirror_dir(isolated_cache)
    mirror.mkdir(parents=True)
    (mirror / "HEAD").write_text("garbage")
    with pytest.raises(SourceError, match="corrupt") as info:
        FetchmailSource(UNREACHABLE).versions()
    assert f"rm -rf {mirror}" in str(info.value)
    assert (mirror / "HEAD").read_text() == "garbage"  # nothing lost on failure


def test_worktree_is_reused_while_clean_and_recreated_when_modified(
    fetchmail_upstream: str,
) -> None:
    source = FetchmailSource(fetchmail_upstream)
    version = _v("6.4.33")
    tree = source.worktree(version)
    header = tree / "fetchmail.h"
    original = header.read_text()
    assert re.search(r"#define\s+PASSWORDLEN\s+256\b", original)
    marker = tree / "configure.ac"
    stamp = marker.stat().st_mtime_ns
    assert source.worktree(version) == tree and marker.stat().st_mtime_ns == stamp  # reused
    header.write_text("scribbled")
    (tree / "stray.o").write_text("x")
    again = source.worktree(version)
    assert again == tree
    assert header.read_text() == original and not (tree / "stray.o").exists()


def test_worktrees_of_different_versions_differ(fetchmail_upstream: str) -> None:
    source = FetchmailSource(fetchmail_upstream)
    old = (source.worktree(_v("6.3.26")) / "fetchmail.h").read_text()
    new = (source.worktree(_v("6.4.33")) / "fetchmail.h").read_text()
    assert re.search(r"#define\s+PASSWORDLEN\s+64\b", old)
    assert re.search(r"#define\s+PASSWORDLEN\s+256\b", new)


def test_sources_command_remembers_the_upstream(
    fetchmail_upstream: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FETCHMAIL_UPSTREAM", raising=False)
    assert configured_upstream() == "https://gitlab.com/fetchmail/fetchmail.git"
    assert main(["sources", "--upstream", fetchmail_upstream]) == 0
    assert "cloned" in capsys.readouterr().out
    assert FetchmailSource().upstream == fetchmail_upstream
    monkeypatch.setenv("FETCHMAIL_UPSTREAM", UNREACHABLE)
    assert FetchmailSource().upstream == UNREACHABLE  # the environment wins
    assert FetchmailSource("/explicit").upstream == "/explicit"


def test_versions_command_lists_native_and_uncovered(
    fetchmail_upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_series(tmp_path, "demo", {"0001-a.patch": "Subject: A\n"}, base="6.4.22")
    write_table(tmp_path, [("demo", "6.4.22", "6.4.22", 0)])
    assert main(["versions", "--upstream", fetchmail_upstream, "--patches-dir", str(tmp_path)]) == 0
    lines = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert lines["next"] == "native" and lines["6.4.33"] == "uncovered"
    assert lines["6.4.22"] == "demo"


def test_versions_without_a_table_is_an_error_not_all_uncovered(
    fetchmail_upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["versions", "--upstream", fetchmail_upstream, "--patches-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"missing {tmp_path / 'series.toml'}" in err


@pytest.fixture
def tarball(fetchmail_upstream: str, tmp_path: Path) -> tuple[Path, str]:
    """fetchmail-6.4.33.tar.gz made from the mirror with git archive, and its sha256."""
    source = FetchmailSource(fetchmail_upstream)
    path = tmp_path / "fetchmail-6.4.33.tar.gz"
    subprocess.run(
        ["git", "--git-dir", str(source.ensure_mirror().git_dir), "archive", "--format=tar.gz",
         "--prefix=fetchmail-6.4.33/", "-o", str(path), "RELEASE_6-4-33"],
        check=True,
    )
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_tarball_source_verifies_and_extracts(tarball: tuple[Path, str]) -> None:
    path, digest = tarball
    source = TarballSource(str(path), digest)
    assert source.version == _v("6.4.33") and source.resolve("6.4.33") == source.version
    tree = source.worktree()
    assert (tree / "fetchmail.c").is_file()
    assert TarballSource(f"file://{path}", digest).worktree() == tree  # extracted once
    with pytest.raises(ConfigError, match=r"holds fetchmail 6\.4\.33"):
        source.resolve("6.4.32")


def test_tarball_checksum_mismatch_extracts_nothing(
    tarball: tuple[Path, str], isolated_cache: Path
) -> None:
    path, digest = tarball
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    with pytest.raises(SourceError, match="checksum mismatch"):
        TarballSource(str(path), wrong).worktree()
    assert not [p for p in (isolated_cache / "source" / "tarballs").iterdir()
                if p.is_dir()]
    with pytest.raises(ConfigError, match="not a sha256"):
        TarballSource(str(path), "abc")
