"""Every release tag from 6.3.0 on takes its series with `patch -p1` within the table's max_fuzz."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.archives import extract
from harness.series.table import Series, TableEntry, load_series, load_table
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


def _touched_files(series: Series) -> set[str]:
    files: set[str] = set()
    for patch in series.patches:
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


def _apply(series: Series, entry: TableEntry, tree: Path) -> list[str]:
    problems = []
    for patch in series.patches:
        run = subprocess.run(
            ["patch", "-p1", f"-F{entry.max_fuzz}", "--batch", "--forward",
             "--no-backup-if-mismatch", "-d", str(tree), "-i", str(patch.path)],
            capture_output=True, text=True,
        )
        if run.returncode != 0:
            problems.append(f"{patch.name}: {run.stdout.strip()} {run.stderr.strip()}")
            break
    return problems


def test_upstream_releases_match_the_known_list(release_tags: dict[Version, str]) -> None:
    assert sorted(release_tags) == sorted(RELEASES)


def test_every_release_takes_its_series(
    release_tags: dict[Version, str], upstream_clone: Path, tmp_path: Path
) -> None:
    table = load_table()
    cache: dict[str, tuple[Series, set[str]]] = {}
    failures = []
    for version in sorted(release_tags):
        entry = next((e for e in table if e.covers(version)), None)
        if entry is None:
            failures.append(f"{version}: not in patches/series.toml")
            continue
        if entry.series not in cache:
            series = load_series(entry.series)
            cache[entry.series] = (series, _touched_files(series))
        series, files = cache[entry.series]
        tree = tmp_path / str(version)
        tree.mkdir()
        _export(upstream_clone, release_tags[version], files, tree)
        problems = _apply(series, entry, tree)
        if problems:
            failures.append(f"{version} ({entry.series}, fuzz {entry.max_fuzz}): {problems[0]}")
        shutil.rmtree(tree)
    assert not failures, "\n".join(failures)
