"""`series regenerate`: re-derive every line and 3-way variant from the canonical series.

A fix to the OAuth code is made once, in the canonical series (the one no other is derived
from, e.g. patches/oauth64). This then, in order:
1. regenerates each derived line series (series.toml `derived_from = PARENT`) by carrying its
   parent onto the line's base (harness/series/derive.py), recorded resolutions, decisions
   and amendments replayed, and writes it back (patch files, series.toml, quilt `series`);
2. carries each series onto every release of its `apply = "3way"` ranges, so every variant a
   build will derive is known to derive;
3. checks every release of the `apply = "fuzz0"` ranges still takes its series at fuzz 0;
4. drops recorded resolutions and amendments nothing used any more.
A conflict without a record stops the run: the maintainer tree (cache/regenerate/src) is left
mid cherry-pick with the markers; the human resolves it there, `git add`s, and runs
`series regenerate --continue`, which records each resolved region in patches/<line>/
resolutions/ and runs everything again (now replaying it). `--check` writes nothing and says
whether the stored series are what regeneration gives (the sync test runs it).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness import paths
from harness.atomic import atomic_write
from harness.errors import ConfigError, PatchError
from harness.maint.stops import (
    STATE,
    drop_empty_dirs,
    load_state,
    record,
    stopped,
    work_dir,
)
from harness.series.derive import (
    AMENDMENTS_DIR,
    Carry,
    NewConflict,
    amendments_dir,
    carry,
    commit_series,
    derived_comment,
    export,
    parse_span,
)
from harness.series.gaps import check_apply, current_releases, failure_reason
from harness.series.resolutions import (
    ResolutionStore,
)
from harness.series.table import (
    FUZZ0,
    QUILT_FILE,
    RESOLUTIONS_DIR,
    TABLE_FILE,
    THREE_WAY,
    Series,
    available_series,
    load_series,
    load_table,
    quilt_series_text,
)
from harness.source.mirror import FetchmailSource
from harness.source.versions import Version
from harness.source.worktree import MaintainerTree

Say = Callable[[str], None]
OUT_OF_SYNC = 1  # exit code of --check when the stored series differ


@dataclass(frozen=True)
class AmendRequest:
    """Stop once `patch` is carried onto the first release of `span` while deriving `owner`
    (series amend); the amendment is recorded in amendments/SPAN/ for every release of it."""

    owner: str
    span: str  # RELEASE or FIRST..LAST
    patch: str

    @property
    def first(self) -> Version:
        return parse_span(self.span)[0]


def derivation_order(patches_dir: Path) -> list[Series]:
    """Every series, parents before the series derived from them; ConfigError on a bad link."""
    series = {n: load_series(n, patches_dir) for n in available_series(patches_dir)}
    order: list[Series] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in chain:
            raise ConfigError(f"derived_from makes a loop: {' -> '.join((*chain, name))}")
        s = series[name]
        if s.derived_from is not None:
            if s.derived_from not in series:
                raise ConfigError(f"{s.directory / TABLE_FILE}: derived_from names unknown "
                                  f"series {s.derived_from!r}")
            visit(s.derived_from, (*chain, name))
        seen.add(name)
        order.append(s)

    for name in sorted(series):
        visit(name, ())
    return order


class Regeneration:
    """One run: derived series staged in a temp dir, then compared or installed."""

    def __init__(self, patches_dir: Path, source: FetchmailSource, say: Say,
                 tree: Path, interactive: bool, amend: AmendRequest | None = None) -> None:
        self.patches_dir = patches_dir
        self.interactive = interactive
        self.amend = amend
        self.amendments: set[Path] = set()  # amendment files the carries used
        self.source = source
        self.say = say
        self.stores: dict[str, ResolutionStore] = {}
        self.current: dict[str, Series] = {}  # name -> regenerated (staged) or stored series
        self.carries: list[Carry] = []
        self.problems: list[str] = []
        self.tree = MaintainerTree(tree)

    def store(self, series: Series) -> ResolutionStore:
        if series.name not in self.stores:
            self.stores[series.name] = ResolutionStore(
                self.patches_dir / series.name / RESOLUTIONS_DIR)
        return self.stores[series.name]

    def _fresh_tree(self) -> None:
        """The worktree, cleaned: reused when it exists (the maintainer's shell may be in it,
        as the instructions say), else cloned from the mirror (sharing its objects)."""
        mirror = Path(self.source.ensure_mirror().git_dir)
        if self.tree.exists():
            self.tree.abort_pick()
            self.tree.git("am", "--abort", check=False)
            self.tree.git("reset", "--quiet", "--hard")
            self.tree.git("clean", "--quiet", "-fdx")
            return
        shutil.rmtree(self.tree.path, ignore_errors=True)
        self.tree = MaintainerTree.clone(mirror, self.tree.path)

    def _carry(self, parent: Series, owner: Series, target: Version,
               commits: list[str]) -> Carry:
        amendments = amendments_dir(self.patches_dir / owner.name, target)
        if amendments.is_dir():
            self.amendments.update(amendments.glob("*.diff"))
        ask = self.amend
        stop_after = None
        if ask and ask.owner == owner.name and ask.first == target:
            stop_after = ask.patch
            amendments = self.patches_dir / owner.name / AMENDMENTS_DIR / ask.span
        try:
            return carry(self.tree, parent, commits, target, self.source.commit(target),
                         self.store(owner), amendments, stop_after)
        except NewConflict as exc:
            if not self.interactive:
                raise PatchError(f"{exc} (deriving {owner.name}): no recorded resolution; run "
                                 "`fetchmail-harness series regenerate`") from exc
            raise stopped(exc.stop, owner, parent, target, self.patches_dir) from exc

    def run(self, staging: Path) -> None:
        self._fresh_tree()
        for series in derivation_order(self.patches_dir):
            if series.derived_from is None:
                self.current[series.name] = series
                continue
            parent = self.current[series.derived_from]
            commits = commit_series(self.tree, parent, self.source.commit(parent.base))
            result = self._carry(parent, series, series.base, commits)
            self.carries.append(result)
            self.say(f"{series.name}: {parent.name} carried onto {series.base}: {result.how}")
            for step in result.steps:
                if step.status != "clean" or step.amended:
                    self.say(step.line())
            derived = export(
                self.tree, self.source.commit(series.base), parent, staging / series.name,
                name=series.name, base=series.base, description=series.description,
                derived_from=series.derived_from,
                comment=derived_comment(parent.name))
            self.current[series.name] = derived
        self._check_ranges()

    def _check_ranges(self) -> None:
        releases = current_releases(self.source.versions())
        for entry in load_table(self.patches_dir):
            series = self.current[entry.series]
            covered = [v for v in releases if entry.covers(v)]
            if entry.apply == FUZZ0:
                bad = [(v, r) for v in covered
                       if not (r := check_apply(self.source, series, v, 0)).ok]
                for v, report in bad:
                    self.problems.append(f"{v}: {failure_reason(report)}; make its range "
                                         f'apply = "{THREE_WAY}" or give it another series')
                self.say(f"{entry}: fuzz 0 on {len(covered) - len(bad)} of {len(covered)} "
                         "release(s)")
                continue
            commits = commit_series(self.tree, series, self.source.commit(series.base))
            hows = []
            for v in covered:
                result = self._carry(series, series, v, commits)
                self.carries.append(result)
                hows.append(f"{v} {result.how}")
            self.say(f"{entry}: three-way merge on {len(covered)} release(s): "
                     + "; ".join(hows))

    # -- results --------------------------------------------------------------------------------

    def outputs(self, staging: Path) -> dict[Path, str | None]:
        """Every file regeneration owns -> its text (None: must not exist)."""
        files: dict[Path, str | None] = {}
        for name, series in self.current.items():
            self.store(series)  # records of a line nothing derives any more are dropped too
            target = self.patches_dir / name
            files[target / QUILT_FILE] = quilt_series_text(series)
            for diff in (target / AMENDMENTS_DIR).rglob("*"):
                if diff.is_file() and diff not in self.amendments:
                    files[diff] = None  # for a release nothing carries onto any more
            if series.derived_from is None:
                continue
            stored = {p.name for p in target.glob("*.patch")}
            for patch in series.patches:
                files[target / patch.name] = patch.path.read_text()
                stored.discard(patch.name)
            for stale in stored:
                files[target / stale] = None
            files[target / TABLE_FILE] = (staging / name / TABLE_FILE).read_text()
        for name, store in self.stores.items():
            directory = self.patches_dir / name / RESOLUTIONS_DIR
            for file in directory.glob("*.resolution"):
                if file.stem not in store.used:
                    files[file] = None
            for key in store.used:
                files[directory / f"{key}.resolution"] = store.records[key].text()
        return files


def _lock() -> FileLock:
    work_dir().mkdir(parents=True, exist_ok=True)
    return FileLock(str(work_dir() / "lock"))


def regenerate(patches_dir: Path | None, upstream: str | None, *, check: bool = False,
               amend: AmendRequest | None = None, say: Say = print) -> int:
    """The one command after a change to the canonical series (see the module docstring)."""
    root = (patches_dir or paths.PATCHES_DIR).resolve()
    with _lock():
        stopped = load_state()
        if stopped is not None and not check:
            raise ConfigError(
                f"a regeneration is stopped at a conflict ({stopped.patch} on "
                f"{stopped.target}) in {work_dir() / 'src'}: resolve it and run `series "
                "regenerate --continue`, or `series regenerate --abort`")
        return _run(root, FetchmailSource(upstream), check, say, amend)


def _run(root: Path, source: FetchmailSource, check: bool, say: Say,
         amend: AmendRequest | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="fmh-regen-") as tmp:
        tree = Path(tmp) / "src" if check else work_dir() / "src"
        regen = Regeneration(root, source, say, tree, interactive=not check, amend=amend)
        regen.run(Path(tmp))
        if amend is not None:
            raise ConfigError(f"{amend.owner} is never carried onto {amend.first} (a derived "
                              "series is carried onto its base and its 3way ranges' releases)")
        files = regen.outputs(Path(tmp))
        changed = sorted(str(p.relative_to(root)) for p, text in files.items()
                         if _differs(p, text))
        for problem in regen.problems:
            say(f"PROBLEM: {problem}")
        if check:
            if changed:
                say(f"out of sync with what regeneration gives ({len(changed)} file(s)): "
                    + ", ".join(changed) + "\nrun `fetchmail-harness series regenerate`")
                return OUT_OF_SYNC
            say("in sync: every derived series is what regeneration gives")
            return PatchError.exit_code if regen.problems else 0
        for path, text in files.items():
            if text is None:
                path.unlink(missing_ok=True)
            elif _differs(path, text):
                atomic_write(path, text)
        for name in regen.current:
            drop_empty_dirs(root / name / RESOLUTIONS_DIR)
            drop_empty_dirs(root / name / AMENDMENTS_DIR)
        say(f"regenerated: {len(changed)} file(s) changed" +
            (": " + ", ".join(changed) if changed else ""))
        if regen.problems:
            raise PatchError(f"{len(regen.problems)} release(s) no longer take their series "
                             "as the table says (see PROBLEM lines above)")
        return 0


def _differs(path: Path, text: str | None) -> bool:
    if text is None:
        return path.exists()
    return not path.is_file() or path.read_text() != text


def resume(upstream: str | None, say: Say = print) -> int:
    """Record the human's resolution of the stopped conflict, then regenerate everything."""
    with _lock():
        state = load_state()
        if state is None:
            raise ConfigError("no regeneration is stopped at a conflict (nothing to continue)")
        record(state, MaintainerTree(work_dir() / "src"), say)
        (work_dir() / STATE).unlink()
        return _run(Path(state.patches_dir), FetchmailSource(upstream), False, say)


def abort(say: Say = print) -> int:
    with _lock():
        state = load_state()
        tree = MaintainerTree(work_dir() / "src")
        if tree.exists():
            tree.abort_pick()
        for name in ("src", "conflicts", STATE):
            target = work_dir() / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    say("regeneration aborted: nothing was recorded" if state else
        "no regeneration was stopped; its work dir is cleaned")
    return 0
