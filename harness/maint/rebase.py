"""Carry a patch series to a new fetchmail release (the maintainer's `rebase`).

1. Pick the series whose base is closest to the target (or --from).
2. If it still applies to the target within max_fuzz: only widen its table range.
3. Otherwise, in cache/rebase/<name>/src: branch at the series' base, `git am` the series,
   then cherry-pick each commit onto the target. cherry-pick merges three-way with the
   series' base as merge base, so upstream code that moved is followed, and each patch is
   reported clean / merged / conflicted. A conflict stops with state in
   cache/rebase/<name>/state.json; `--continue` resumes after `git add`, `--abort` drops it.
4. Export with `git format-patch` (fresh context, same patch names and messages), check it
   applies, run the end-to-end cells (unless --no-test), then install it as patches/<name>/
   and map the target to it in patches/series.toml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from harness import paths
from harness.atomic import atomic_copytree, atomic_write
from harness.build.distros import Distro, parse_distros
from harness.errors import CellFailure, ConfigError, HarnessError, PatchError
from harness.maint.worktree import Conflict, MaintainerTree, numbering_of
from harness.series.apply import ApplyReport
from harness.series.gaps import check_apply, closest_series, current_releases, failure_reason
from harness.series.names import SERIES_NAME_RULE, is_series_name
from harness.series.table import (
    TABLE_FILE,
    Series,
    available_series,
    entry_for,
    load_series,
    series_for,
)
from harness.series.table_edit import Range, TableDoc, map_release, series_file_text
from harness.source.mirror import FetchmailSource
from harness.source.versions import Version

STATE_FILE = "state.json"
CLEAN, MERGED, CONFLICTED, RESOLVED, DROPPED = (
    "clean", "merged", "conflicted", "resolved", "dropped")

Say = Callable[[str], None]


@dataclass
class Outcome:
    patch: str
    status: str  # clean / merged / conflicted / resolved / dropped
    detail: str = ""

    def line(self) -> str:
        label = {CLEAN: "clean", MERGED: "merged automatically", CONFLICTED: "CONFLICTED",
                 RESOLVED: "resolved by hand", DROPPED: "dropped"}[self.status]
        return f"  {label:21} {self.patch}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class RebaseState:
    """What `--continue` needs, saved as JSON next to the worktree."""

    name: str
    from_series: str
    base: str
    onto: str
    onto_commit: str
    patches_dir: str
    upstream: str
    numbering: str
    description: str
    test: bool
    distros: list[str]
    commits: dict[str, str]  # patch name -> its commit on the base branch
    remaining: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    current: str | None = None  # the patch whose conflict is being resolved
    stopped_at: str = ""  # HEAD when it stopped

    def save(self, directory: Path) -> None:
        atomic_write(directory / STATE_FILE, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> RebaseState:
        file = directory / STATE_FILE
        try:
            data: dict[str, Any] = json.loads(file.read_text())
            data["outcomes"] = [Outcome(**o) for o in data.get("outcomes", [])]
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"unreadable rebase state {file}: {exc}") from exc


# -- where things are ---------------------------------------------------------------------------


def rebase_root() -> Path:
    return paths.cache_dir() / "rebase"


def rebase_dir(name: str) -> Path:
    return rebase_root() / name


def in_progress() -> list[str]:
    root = rebase_root()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if (d / STATE_FILE).is_file())


def _pick_in_progress(name: str | None) -> str:
    running = in_progress()
    if name:
        if name not in running:
            others = f" (in progress: {', '.join(running)})" if running else ""
            raise ConfigError(f"no rebase named {name!r} is in progress{others}")
        return name
    if not running:
        raise ConfigError("no rebase in progress (start one with `rebase --onto TAG`)")
    if len(running) > 1:
        raise ConfigError(f"several rebases in progress ({', '.join(running)}): pick one "
                          "with --name")
    return running[0]


def default_name(from_series: str, onto: Version) -> str:
    stem = re.sub(r"_\d+\.\d+\.\d+[a-z0-9.]*$", "", from_series)
    return re.sub(r"[^a-z0-9_.]", "_", f"{stem}_{onto}".lower())  # oauth63-17 -> oauth63_17_…


def _lock(name: str) -> FileLock:
    rebase_root().mkdir(parents=True, exist_ok=True)
    return FileLock(str(rebase_root() / f"{name}.lock"))


# -- starting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    test: bool = True
    regenerate: bool = False  # even if the old series still applies
    distros: tuple[Distro, ...] = ("bookworm",)
    patches_dir: Path | None = None
    upstream: str | None = None


def start(onto: str, from_series: str | None, name: str | None, opts: Options,
          say: Say = print) -> int:
    patches_dir = (opts.patches_dir or paths.PATCHES_DIR).resolve()
    source = FetchmailSource(opts.upstream)
    target = source.resolve(onto)
    if target.branch:
        raise ConfigError(f"{target} has native OAuth and gets no patch series")
    onto_commit = source.commit(target)
    releases = [v for v in source.versions() if not v.branch]
    series = _choose_series(target, from_series, patches_dir, releases)
    doc = TableDoc(patches_dir / TABLE_FILE)
    max_fuzz = _max_fuzz_near(doc.ranges(), series.name, target)
    say(f"rebase: {series.name} (base {series.base}) onto {target} ({target.tag}, "
        f"{onto_commit[:12]})")

    report = check_apply(source, series, target, max_fuzz)
    if report.ok and not opts.regenerate:
        return _widen(source, series, target, max_fuzz, releases, report, doc, patches_dir,
                      opts, say)
    say(("it still applies, but --regenerate asks for a fresh series" if report.ok else
         failure_reason(report)) + "; carrying it over with three-way merges")

    new = (name or default_name(series.name, target)).lower()
    if not is_series_name(new):
        raise ConfigError(f"bad series name {new!r}: {SERIES_NAME_RULE} "
                          "(it becomes part of matrix cell identifiers)")
    if (patches_dir / new).exists():
        raise ConfigError(f"{patches_dir / new} already exists; choose another --name")
    with _lock(new):
        directory = rebase_dir(new)
        if (directory / STATE_FILE).is_file():
            raise ConfigError(
                f"a rebase named {new!r} is already in progress in {directory}: "
                f"`fetchmail-harness rebase --continue --name {new}` or `--abort --name {new}`")
        _check_clean_leftover(directory / "src")
        shutil.rmtree(directory, ignore_errors=True)
        tree = MaintainerTree.clone(Path(source.ensure_mirror().git_dir), directory / "src")
        base_commit = source.commit(series.base)
        commits = _commit_series(tree, series, base_commit, directory)
        tree.checkout_branch(f"rebase/{new}", onto_commit)
        state = RebaseState(
            name=new, from_series=series.name, base=str(series.base), onto=str(target),
            onto_commit=onto_commit, patches_dir=str(patches_dir), upstream=source.upstream,
            numbering=numbering_of([p.path.read_text(errors="replace")
                                    for p in series.patches]),
            description=series.description, test=opts.test, distros=list(opts.distros),
            commits=commits, remaining=[p.name for p in series.patches],
        )
        state.save(directory)
        say(f"worktree: {tree.path} (branch rebase/{new}; the series as commits on "
            f"series/{series.name})")
        return _carry(state, tree, say)


def parse_targets(onto: str, source: FetchmailSource) -> list[Version]:
    """`TAG`, or `FIRST..LAST` / `FIRST..`: every release in between, oldest first (a
    superseded pre-release only when named as an end)."""
    if ".." not in onto:
        return [source.resolve(onto)]
    first_name, _, last_name = onto.partition("..")
    releases = current_releases(source.versions())
    if not first_name or not releases:
        raise ConfigError(f"bad range {onto!r}: use FIRST..LAST or FIRST.. (e.g. 6.4.24..6.4.33)")
    first = source.resolve(first_name)
    last = source.resolve(last_name) if last_name else releases[-1]
    if first.branch or last.branch:
        raise ConfigError(f"bad range {onto!r}: `next` has native OAuth and gets no series")
    if last < first:
        raise ConfigError(f"bad range {onto!r}: {last} comes before {first}")
    return sorted({v for v in releases if first <= v <= last} | {first, last})


def start_range(onto: str, from_series: str | None, opts: Options, say: Say = print) -> int:
    """Carry a series release after release: each step starts from the series the previous
    release ended up mapped to (widened, or regenerated). Stops at the first conflict or
    failure, saying how to go on; rerunning skips releases already mapped."""
    source = FetchmailSource(opts.upstream)
    targets = parse_targets(onto, source)
    patches_dir = (opts.patches_dir or paths.PATCHES_DIR).resolve()
    carrying = from_series
    done: list[str] = []
    for target in targets:
        say(f"== {target} ({len(done) + 1}/{len(targets)})")
        mapped = series_for(target, patches_dir)
        if mapped is not None and (from_series is None or done):
            series, entry = mapped
            carrying = series.name  # if it no longer fits, this is the series to carry
            if check_apply(source, series, target, entry.max_fuzz).ok:
                say(f"{target} is already mapped to {series.name}, which applies; skipped")
                done.append(f"{target} -> {carrying}")
                continue
        try:
            code = start(str(target), carrying, None, opts, say)
        except HarnessError:
            _say_range_progress(done, targets, target, say)
            raise
        if code != 0:
            _say_range_progress(done, targets, target, say)
            return code
        covering = entry_for(target, patches_dir)
        carrying = covering.series if covering else carrying
        done.append(f"{target} -> {carrying}")
    say(f"carried {len(done)} release(s):")
    for line in done:
        say(f"  {line}")
    return 0


def _say_range_progress(done: list[str], targets: list[Version], stopped: Version,
                        say: Say) -> None:
    say(f"stopped at {stopped}; done before it: {', '.join(done) or 'none'}")
    rest = targets[targets.index(stopped) + 1:]
    if rest:
        say(f"once {stopped} is mapped (resolve, then `rebase --continue`), carry on with "
            f"`fetchmail-harness rebase --onto {stopped}..{rest[-1]}`: releases already "
            "mapped are skipped")


def _choose_series(target: Version, from_series: str | None, patches_dir: Path,
                   releases: list[Version]) -> Series:
    if from_series:
        return load_series(from_series, patches_dir)
    candidates = [load_series(n, patches_dir) for n in available_series(patches_dir)]
    best = closest_series(target, candidates, releases)
    if best is None:
        raise ConfigError(f"no patch series in {patches_dir} to carry over")
    return best


def _max_fuzz_near(ranges: list[Range], series: str, target: Version) -> int:
    own = [r for r in ranges if r.series == series]
    if not own:
        return 0

    def distance(r: Range) -> tuple[bool, Version]:
        return (not r.covers(target), r.last if r.last < target else r.first)

    return min(own, key=distance).max_fuzz


def _check_clean_leftover(src: Path) -> None:
    tree = MaintainerTree(src)
    if not tree.exists():
        return
    dirty = tree.dirty() if not tree.picking() else ["(a cherry-pick is stopped there)"]
    if dirty:
        raise ConfigError(
            f"the maintainer worktree {src} has uncommitted changes:\n  "
            + "\n  ".join(dirty)
            + f"\nSave what you need, then discard them (git -C {src} reset --hard) or "
              "`fetchmail-harness rebase --abort --name NAME` to remove it.")


def _commit_series(tree: MaintainerTree, series: Series, base_commit: str,
                   directory: Path) -> dict[str, str]:
    tree.checkout_branch(f"series/{series.name}", base_commit)
    commits: dict[str, str] = {}
    for patch in series.patches:
        proc = tree.am(patch.path)
        if proc.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            raise PatchError(
                f"{series.name}: {patch.name} does not apply with `git am` to its own base "
                f"{series.base}:\n{(proc.stdout + proc.stderr).strip()}")
        commits[patch.name] = tree.head()
    return commits


# -- the fast path: the old series still fits -----------------------------------------------------


def _widen(source: FetchmailSource, series: Series, target: Version, max_fuzz: int,
           releases: list[Version], report: ApplyReport, doc: TableDoc, patches_dir: Path,
           opts: Options, say: Say) -> int:
    say(report.render())
    covering = next((r for r in doc.ranges() if r.covers(target)), None)
    if covering is not None and covering.series == series.name:
        say(f"{target} is already mapped to {series.name} ({covering}); nothing to do")
        return 0

    def fits(v: Version) -> bool:
        return check_apply(source, series, v, max_fuzz).ok

    changes = map_release(doc, series.name, target, max_fuzz, releases, fits)
    if opts.test:
        with tempfile.TemporaryDirectory(prefix="fmh-widen-") as tmp:
            staging = _stage(patches_dir, Path(tmp) / "patches", doc.text())
            _test(target, series.name, staging, True, opts.distros, source.upstream, say)
    else:
        _test(target, series.name, patches_dir, False, opts.distros, source.upstream, say)
    doc.save(_maps_to(target, series.name))
    say(f"{series.name} still applies to {target}: no new series needed")
    for change in changes:
        say(f"table: {change} ({doc.path})")
    return 0


def _maps_to(version: Version, series: str) -> Callable[[list[Range]], None]:
    def check(ranges: list[Range]) -> None:
        hit = next((r for r in ranges if r.covers(version)), None)
        if hit is None or hit.series != series:
            raise ConfigError(f"internal error: table edit left {version} mapped to {hit}")
    return check


# -- carrying commits over ----------------------------------------------------------------------


def _carry(state: RebaseState, tree: MaintainerTree, say: Say) -> int:
    directory = rebase_dir(state.name)
    while state.remaining:
        patch = state.remaining[0]
        commit = state.commits[patch]
        as_is, offset = tree.apply_check(commit)
        result = tree.cherry_pick(commit)
        if result == "conflict":
            state.remaining.pop(0)
            state.current = patch
            state.stopped_at = tree.head()
            state.save(directory)
            conflicts = tree.unmerged()
            outcome = Outcome(patch, CONFLICTED, ", ".join(c.path for c in conflicts))
            say(outcome.line())
            raise PatchError(_conflict_message(state, tree, conflicts))
        if result == "empty":
            outcome = Outcome(patch, DROPPED, "no change left: already upstream?")
        elif as_is:
            outcome = Outcome(patch, CLEAN, f"offset {offset} lines" if offset else "")
        else:
            outcome = Outcome(patch, MERGED, "context changed upstream; three-way merge")
        state.outcomes.append(outcome)
        state.remaining.pop(0)
        state.save(directory)
        say(outcome.line())
    return _finish(state, tree, say)


def _conflict_message(state: RebaseState, tree: MaintainerTree,
                      conflicts: list[Conflict]) -> str:
    lines = [f"{state.current} conflicts with fetchmail {state.onto} "
             f"(carrying {state.from_series} from {state.base}):"]
    for c in conflicts:
        lines.append(f"--- {c.describe()}")
        for hunk in c.hunks:
            lines.append(hunk)
            lines.append("")
    done = len(state.outcomes)
    total = done + 1 + len(state.remaining)
    lines += [
        f"Stopped at patch {done + 1} of {total}; {len(state.remaining)} still to carry. "
        f"State: {rebase_dir(state.name) / STATE_FILE}",
        f"Markers: <<<<<<< fetchmail {state.onto} (with the patches before it) | ||||||| the "
        f"series' base {state.base} | ======= | >>>>>>> the patch.",
        "To resolve:",
        f"  cd {tree.path}",
        "  edit the files above (remove every marker), then `git add FILE...` "
        "(`git rm FILE` to delete one)",
        f"  fetchmail-harness rebase --continue --name {state.name}",
        f"Or give up: fetchmail-harness rebase --abort --name {state.name}",
    ]
    return "\n".join(lines)


# -- continue / abort ---------------------------------------------------------------------------


def resume(name: str | None, test: bool | None, say: Say = print) -> int:
    name = _pick_in_progress(name)
    with _lock(name):
        directory = rebase_dir(name)
        state = RebaseState.load(directory)
        if test is not None:
            state.test = test
        tree = MaintainerTree(directory / "src")
        say(f"rebase {name}: {state.from_series} (base {state.base}) onto {state.onto}, "
            f"in {tree.path}")
        if state.current is not None:
            state.outcomes.append(_resolved(state, tree))
            say(state.outcomes[-1].line())
            state.current = None
            state.save(directory)
        elif tree.dirty():
            raise ConfigError(
                f"the maintainer worktree {tree.path} has uncommitted changes:\n  "
                + "\n  ".join(tree.dirty())
                + "\nCommit them (git commit --amend into the right patch) or discard them "
                  "(git reset --hard), then --continue.")
        return _carry(state, tree, say)


def _resolved(state: RebaseState, tree: MaintainerTree) -> Outcome:
    """Commit the maintainer's resolution of state.current, or say what is missing."""
    patch = state.current
    assert patch is not None
    if tree.picking():
        conflicts = tree.unmerged()
        if conflicts:
            raise PatchError(
                f"{patch} is not resolved yet: still conflicted: "
                + ", ".join(c.describe() for c in conflicts)
                + f"\nEdit them in {tree.path}, `git add` them, then --continue "
                  f"(or --abort --name {state.name}).")
        unstaged = tree.unstaged()
        if unstaged:
            raise ConfigError(
                f"the maintainer worktree {tree.path} has changes that are not staged: "
                f"{', '.join(unstaged)}\n`git add` them (or `git checkout -- FILE` to drop "
                "them), then --continue.")
        markers = tree.staged_markers()
        if markers:
            raise PatchError(
                f"conflict markers are still staged in {', '.join(markers)}: remove them, "
                "`git add` again, then --continue.")
        if tree.continue_pick() == "empty":
            return Outcome(patch, DROPPED, "resolved to no change")
        return Outcome(patch, RESOLVED, "conflict resolved by hand")
    if tree.dirty():
        raise ConfigError(
            f"the maintainer worktree {tree.path} has uncommitted changes:\n  "
            + "\n  ".join(tree.dirty()) + "\nCommit or discard them, then --continue.")
    if tree.head() != state.stopped_at:
        return Outcome(patch, RESOLVED, "committed by hand")
    raise PatchError(
        f"the cherry-pick of {patch} is no longer in progress and nothing was committed "
        f"(was it aborted by hand?). Run `git cherry-pick {state.commits[patch]}` in "
        f"{tree.path} and resolve it, or --abort --name {state.name}.")


def abort(name: str | None, say: Say = print) -> int:
    if name is None:
        name = _pick_in_progress(None)
    directory = rebase_dir(name)
    if not directory.exists():
        raise ConfigError(f"no rebase named {name!r} (nothing in {directory})")
    with _lock(name):
        tree = MaintainerTree(directory / "src")
        if tree.exists():
            tree.abort_pick()
        shutil.rmtree(directory)
    say(f"rebase {name} aborted: removed {directory}; nothing was written to the patches")
    return 0


# -- export, test, install ----------------------------------------------------------------------


def _finish(state: RebaseState, tree: MaintainerTree, say: Say) -> int:
    directory = rebase_dir(state.name)
    patches_dir = Path(state.patches_dir)
    staging = _export(state, tree, directory / "export")
    source = FetchmailSource(state.upstream)
    target = Version.parse(state.onto)
    regenerated = load_series(state.name, staging)
    report = check_apply(source, regenerated, target, 0)
    say(report.render())
    if not report.ok or any(r.status != "clean" for r in report.results):
        raise PatchError(
            f"the regenerated series in {staging / state.name} does not apply cleanly to "
            f"{target} with GNU patch; inspect {tree.path} and --continue once fixed")
    releases = [v for v in source.versions() if not v.branch]
    doc = TableDoc(patches_dir / TABLE_FILE)
    changes = map_release(doc, state.name, target, 0, releases)
    atomic_write(staging / TABLE_FILE, doc.text())  # the cells see the table as it will be
    _test(target, state.name, staging, state.test, parse_distros(",".join(state.distros)),
          state.upstream, say)
    _install(staging / state.name, patches_dir / state.name)
    doc.save(_maps_to(target, state.name))
    (directory / STATE_FILE).unlink()
    shutil.rmtree(directory / "export", ignore_errors=True)
    counts = {s: sum(1 for o in state.outcomes if o.status == s)
              for s in (CLEAN, MERGED, RESOLVED, DROPPED)}
    say(f"regenerated {state.from_series} (base {state.base}) as {state.name} (base "
        f"{state.onto}): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    say(f"series: {patches_dir / state.name}")
    for change in changes:
        say(f"table: {change} ({doc.path})")
    dropped = [o.patch for o in state.outcomes if o.status == DROPPED]
    if dropped:
        say(f"note: dropped (no change left): {', '.join(dropped)}")
    say(f"worktree kept for inspection: {tree.path}")
    return 0


def _export(state: RebaseState, tree: MaintainerTree, staging: Path) -> Path:
    """A patches dir with the regenerated series plus the existing ones (symlinked)."""
    shutil.rmtree(staging, ignore_errors=True)
    raw = staging / ".format-patch"
    files = tree.format_patches(state.onto_commit, raw, state.numbering)
    kept = [o.patch for o in state.outcomes if o.status != DROPPED]
    if len(files) != len(kept):
        raise PatchError(
            f"{tree.path} has {len(files)} commits on top of {state.onto} but the series "
            f"has {len(kept)} patches ({', '.join(kept)}); keep one commit per patch")
    out = staging / state.name
    out.mkdir(parents=True)
    for src, name in zip(files, kept, strict=True):
        os.replace(src, out / name)
    shutil.rmtree(raw)
    comment = (f"Regenerated by `fetchmail-harness rebase` from {state.from_series} "
               f"(base {state.base}) onto {state.onto}.")
    atomic_write(out / TABLE_FILE, series_file_text(
        state.name, Version.parse(state.onto), state.description, kept, comment))
    return _stage(Path(state.patches_dir), staging, None)


def _stage(patches_dir: Path, staging: Path, table_text: str | None) -> Path:
    """Make `staging` a patches dir: the series of `patches_dir` (symlinked) and a table."""
    staging.mkdir(parents=True, exist_ok=True)
    for other in available_series(patches_dir):
        if not (staging / other).exists():
            (staging / other).symlink_to(patches_dir / other, target_is_directory=True)
    if table_text is not None:
        atomic_write(staging / TABLE_FILE, table_text)
    elif (patches_dir / TABLE_FILE).is_file():
        shutil.copyfile(patches_dir / TABLE_FILE, staging / TABLE_FILE)
    return staging


def _install(built: Path, dest: Path) -> None:
    if dest.exists():
        raise ConfigError(f"{dest} appeared meanwhile; not overwriting it. The regenerated "
                          f"series is in {built}")
    atomic_copytree(built, dest)


def _test(version: Version, series: str, patches_dir: Path, enabled: bool,
          distros: tuple[Distro, ...], upstream: str | None, say: Say) -> None:
    """Build and run the end-to-end cells of `version` with `series`; CellFailure if any fail."""
    if not enabled:
        say("end-to-end cells: skipped (--no-test)")
        return
    from harness.matrix.backend import DockerBackend  # the Docker side, only when testing
    from harness.matrix.runner import ResultCache, run_matrix
    from harness.matrix.select import generate

    cells = generate([version], lambda v: series, distros=distros)
    say(f"end-to-end cells: running {len(cells)} for {version} with {series} "
        f"({', '.join(distros)}) ...")
    try:
        backend = DockerBackend(upstream=upstream, patches_dir=patches_dir)
        outcome = run_matrix(cells, backend, jobs=2, cache=ResultCache(),
                             log_dir=paths.cache_dir() / "cell-logs")
    except HarnessError as exc:
        raise type(exc)(f"{exc}\n(skip the end-to-end cells with --no-test)") from exc
    counts = outcome.counts()
    say("end-to-end cells: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    bad = [r for r in outcome.results if not r.ok]
    if bad:
        raise CellFailure(
            f"{len(bad)} of {len(cells)} cells failed for {version} with {series}:\n"
            + "\n".join(f"  {r.summary()}" for r in bad)
            + "\nNothing was installed. Fix the commits in the worktree and --continue, "
              "or --abort.")
