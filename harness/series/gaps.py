"""Which releases the table leaves uncovered, and a fast "does this series still apply?" check.

The check applies the series with GNU patch (harness.series.apply) to a temp tree holding only
the files the series touches, taken from the mirror with `git archive`: the same verdict as a full
checkout for a fraction of the cost, so every release can be checked in a few seconds.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import git

from harness.archives import extract
from harness.errors import SourceError
from harness.series.apply import ApplyReport, apply_series
from harness.series.interdiff import parse_patch
from harness.series.table import Series, TableEntry, available_series, load_series, load_table
from harness.source.mirror import FetchmailSource
from harness.source.versions import Version

OLDEST = Version.parse("6.3.0")


def touched_files(series: Series) -> list[str]:
    paths: list[str] = []
    for patch in series.patches:
        for path in parse_patch(patch.path.read_text(errors="replace")).files:
            if path not in paths:
                paths.append(path)
    return paths


def _export_files(mirror: Path, ref: str, paths: list[str], dest: Path) -> None:
    """The given paths of `ref` (those that exist there) written under dest."""
    repo = git.Repo(mirror)
    try:
        listed = repo.git.ls_tree("-r", "--name-only", ref, "--", *paths)
    except git.GitCommandError as exc:
        raise SourceError(f"cannot list {ref} in {mirror}: {exc.stderr.strip()}") from exc
    present = [p for p in listed.split("\n") if p]
    dest.mkdir(parents=True, exist_ok=True)
    if not present:
        return
    archive = io.BytesIO()
    try:
        repo.archive(archive, ref, format="tar", path=present)
    except git.GitCommandError as exc:
        raise SourceError(f"cannot export {ref} from {mirror}: {exc.stderr.strip()}") from exc
    archive.seek(0)
    with tarfile.open(fileobj=archive) as tar:
        extract(tar, dest)


def check_apply(source: FetchmailSource, series: Series, version: Version,
                max_fuzz: int | None) -> ApplyReport:
    """How `series` applies to `version` (GNU patch on the touched files of that release)."""
    mirror = Path(source.ensure_mirror().git_dir)
    with tempfile.TemporaryDirectory(prefix="fmh-check-") as tmp:
        tree = Path(tmp) / str(version)
        _export_files(mirror, source.commit(version), touched_files(series), tree)
        return apply_series(series, tree, max_fuzz=max_fuzz)


def applies(report: ApplyReport) -> bool:
    return report.ok


def failure_reason(report: ApplyReport) -> str:
    if report.failed:
        parts = [f"{r.name}: {'; '.join(r.failures)}" for r in report.failed]
        return f"series {report.series} no longer applies ({' | '.join(parts)})"
    return (f"series {report.series} needs fuzz {report.fuzz}, more than the table's "
            f"max_fuzz {report.max_fuzz}")


@dataclass(frozen=True)
class Gap:
    version: Version
    reason: str


def closest_series(version: Version, candidates: Iterable[Series],
                   releases: list[Version]) -> Series | None:
    """The series whose base is fewest releases away from `version` (older bases win ties)."""
    order = {v: i for i, v in enumerate(sorted(set(releases) | {version}))}

    def distance(s: Series) -> tuple[int, bool, str]:
        if s.base in order:
            d = abs(order[s.base] - order[version])
        else:  # a base the mirror does not know: rank by ordering only
            d = sum(1 for v in order if min(s.base, version) < v <= max(s.base, version))
        return (d, s.base > version, s.name)

    ranked = sorted(candidates, key=distance)
    return ranked[0] if ranked else None


def current_releases(versions: Iterable[Version]) -> list[Version]:
    """Releases from 6.3.0 on, without `next` and without superseded pre-releases (a beta
    counts only while it is the newest pre-release of a version that has no final release)."""
    found = sorted(v for v in versions if not v.branch and v >= OLDEST)
    finals = {(v.major, v.minor, v.patch) for v in found if v.pre is None}
    newest_pre: dict[tuple[int, int, int], Version] = {}
    for v in found:
        if v.pre is not None:
            newest_pre[(v.major, v.minor, v.patch)] = v  # sorted: the last one wins
    return [v for v in found if v.pre is None
            or ((v.major, v.minor, v.patch) not in finals
                and newest_pre[(v.major, v.minor, v.patch)] == v)]


def superseded(versions: Iterable[Version]) -> list[Version]:
    current = set(current_releases(versions))
    return [v for v in sorted(versions) if v.pre is not None and v >= OLDEST
            and v not in current]


def find_gaps(source: FetchmailSource, patches_dir: Path | None, *, apply_check: bool = True,
              progress: Callable[[Version], None] | None = None) -> tuple[list[Version], list[Gap]]:
    """(releases checked, those uncovered with a reason each)."""
    releases = current_releases(source.versions())
    table = load_table(patches_dir)
    series_cache: dict[str, Series] = {}
    all_series = [load_series(n, patches_dir) for n in available_series(patches_dir)]
    gaps: list[Gap] = []
    for version in releases:
        if progress:
            progress(version)
        entry = next((e for e in table if e.covers(version)), None)
        if entry is None:
            gaps.append(Gap(version, "no series maps it" + _hint(version, all_series, releases)))
            continue
        if not apply_check:
            continue
        series = series_cache.setdefault(entry.series, load_series(entry.series, patches_dir))
        report = check_apply(source, series, version, entry.max_fuzz)
        if not report.ok:
            gaps.append(Gap(version, failure_reason(report) + _rebase_hint(version, entry)))
    return releases, gaps


def _hint(version: Version, all_series: list[Series], releases: list[Version]) -> str:
    near = closest_series(version, all_series, releases)
    if near is None:
        return " (no series exists yet)"
    return f" (closest: {near.name}, base {near.base}; try `fetchmail-harness rebase --onto " \
        f"{version}`)"


def _rebase_hint(version: Version, entry: TableEntry) -> str:
    return f" (try `fetchmail-harness rebase --onto {version} --from {entry.series}`)"
