"""Every release tag from 6.3.0 on takes its series the way the table says, then its build fixes.

`fuzz0`: the stored patches with `patch -p1 -F0`. `3way`: the variant the harness derives for
the release (three-way merge, recorded resolutions replayed), which must itself apply at -F0;
such a release must need it (the stored series does not apply there at fuzz 0). The build
fixes (patches/build-fixes) then apply at -F0 on top, and those that do not need a series
also to the unpatched release.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.archives import extract
from harness.series.buildfixes import fixes_for
from harness.series.derive import variant
from harness.series.table import FUZZ0, THREE_WAY, Patch, Series, load_series, load_table
from harness.source.mirror import FetchmailSource
from harness.source.versions import Version
from tests.helpers.releases import RELEASES, upstream_release

pytestmark = pytest.mark.fetchmail_source


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(repo), *args], check=True,
                          capture_output=True).stdout


@pytest.fixture(scope="module")
def upstream_clone(fetchmail_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private bare clone (tags only matter), so nothing writes into the shared mirror."""
    if shutil.which("patch") is None:
        pytest.skip("`patch` is not installed")
    dest = tmp_path_factory.mktemp("upstream") / "fetchmail.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", fetchmail_upstream, str(dest)],
                   check=True, capture_output=True)
    return dest


@pytest.fixture(scope="module")
def release_tags(upstream_clone: Path) -> dict[Version, str]:
    tags = _git(upstream_clone, "tag", "--list").decode().split()
    return {v: t for t in tags if (v := upstream_release(t)) is not None}


def _touched_files(patches: tuple[Patch, ...]) -> set[str]:
    files: set[str] = set()
    for patch in patches:
        text = patch.path.read_text(encoding="utf-8")
        files.update(re.findall(r"^\+\+\+ b/(\S+)", text, re.MULTILINE))
    return files


def _export(repo: Path, tag: str, files: set[str], dest: Path) -> None:
    present = set(_git(repo, "ls-tree", "-r", "--name-only", tag).decode().splitlines())
    wanted = sorted(files & present)
    if wanted:
        data = _git(repo, "archive", "--format=tar", tag, "--", *wanted)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            extract(tar, dest)


def _apply(patches: tuple[Patch, ...], tree: Path) -> str | None:
    """The first problem applying `patches` in order with -F0, or None."""
    for patch in patches:
        run = subprocess.run(
            ["patch", "-p1", "-F0", "--batch", "--forward", "--no-backup-if-mismatch",
             "-d", str(tree), "-i", str(patch.path)],
            capture_output=True, text=True,
        )
        if run.returncode != 0:
            return f"{patch.name}: {run.stdout.strip()} {run.stderr.strip()}"
    return None


def test_upstream_releases_match_the_known_list(release_tags: dict[Version, str]) -> None:
    assert sorted(release_tags) == sorted(RELEASES)


def test_every_release_takes_its_series_and_build_fixes(
    release_tags: dict[Version, str], upstream_clone: Path, tmp_path: Path
) -> None:
    source = FetchmailSource(str(upstream_clone))
    table = load_table()
    stored: dict[str, Series] = {}
    failures = []
    methods = {FUZZ0: 0, THREE_WAY: 0}
    for version in sorted(release_tags):
        entry = next((e for e in table if e.covers(version)), None)
        if entry is None:
            failures.append(f"{version}: not in patches/series.toml")
            continue
        series = stored.setdefault(entry.series, load_series(entry.series))
        methods[entry.apply] += 1
        if entry.apply == THREE_WAY:
            applied, _ = variant(source, series, version)
            tree = tmp_path / f"{version}-stored"
            _export(upstream_clone, release_tags[version], _touched_files(series.patches), tree)
            if _apply(series.patches, tree) is None:
                failures.append(f"{version}: {entry.series} applies at fuzz 0, so its range "
                                f'should say apply = "{FUZZ0}"')
        else:
            applied = series
        fixes = tuple(f.patch for f in fixes_for(version, True))
        tree = tmp_path / str(version)
        _export(upstream_clone, release_tags[version],
                _touched_files(applied.patches + fixes), tree)
        problem = _apply(applied.patches, tree) or _apply(fixes, tree)
        if problem:
            failures.append(f"{version} ({entry.series}, {entry.apply}): {problem}")
        plain = tuple(f.patch for f in fixes_for(version, False))
        tree = tmp_path / f"{version}-plain"
        _export(upstream_clone, release_tags[version], _touched_files(plain), tree)
        problem = _apply(plain, tree)
        if problem:
            failures.append(f"{version} (unpatched, build fixes only): {problem}")
    assert not failures, "\n".join(failures)
    assert methods[FUZZ0] and methods[THREE_WAY]  # both methods were exercised
