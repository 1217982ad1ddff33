"""Carry a series onto another release with git's three-way merge, replaying recorded resolutions.

Used for both kinds of derived series:
- a line series (patches/<line>/ with `derived_from`), regenerated from its parent by
  `fetchmail-harness series regenerate` and stored;
- the per-release variant of a `3way` table range, derived on demand (cached), so a release
  the stored series does not fit at fuzz 0 still gets patches that do.

The parent series becomes commits on its own base; each commit is cherry-picked onto the
target release (merge base: the parent's base, so code that moved upstream is followed). A
conflict region whose record is in the line's ResolutionStore is replaced by the recorded
resolution; any other conflict stops the carry (NewConflict) with the markers in the tree.
The result is exported with `git format-patch`: same patch names and messages (DEP-3 fields
included) as the parent, fresh context, applying at fuzz 0 to the target.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from harness import paths
from harness.atomic import atomic_write
from harness.errors import ConfigError, PatchError
from harness.series.resolutions import (
    DELETE,
    THEIRS,
    ResolutionStore,
    Segment,
    decision_key,
    parse_conflicts,
    regions,
    render,
)
from harness.series.table import TABLE_FILE, Series, load_series_dir
from harness.series.table_edit import series_file_text
from harness.source.mirror import FetchmailSource
from harness.source.versions import Version
from harness.source.worktree import MaintainerTree, numbering_of

DERIVE_VERSION = 1  # bump when the derivation's output changes for the same inputs
CLEAN, MERGED, REPLAYED = "clean", "merged", "replayed"
AMENDMENTS_DIR = "amendments"  # patches/<line>/amendments/<release>/<patch>.diff


@dataclass(frozen=True)
class Step:
    patch: str
    status: str  # clean / merged (three-way, no conflict) / replayed (recorded resolutions)
    replayed: tuple[str, ...] = ()  # keys of the records used
    amended: bool = False  # its recorded amendment was applied on top

    def line(self) -> str:
        detail = {CLEAN: "applies as is", MERGED: "three-way merge, no conflict",
                  REPLAYED: f"{len(self.replayed)} recorded resolution(s) replayed"}
        extra = ", recorded amendment applied" if self.amended else ""
        return f"  {self.status:9} {self.patch}  ({detail[self.status]}{extra})"


@dataclass
class Stop:
    """Where a human is needed. kind "conflict": a conflict no record resolves, the tree left
    mid cherry-pick. kind "amend": the tree at the carried patch (HEAD) with its amendment,
    if any, in the worktree, to be edited (the amendment no longer applies, or was asked for).
    """

    patch: str
    files: dict[str, list[Segment]]  # path -> segments still holding unresolved regions
    other: list[tuple[str, str, tuple[str, ...]]]  # conflicts not in a file's text: path,
    # git's state (DU: deleted upstream, changed by the patch, ...), unmerged index entries
    tree: Path
    kind: str = "conflict"
    amendment: Path | None = None  # where the amendment is recorded (kind "amend")
    rejects: list[str] = field(default_factory=list)  # hunks of it that no longer apply

    def summary(self) -> str:
        if self.kind == "amend":
            return (f"its recorded amendment {self.amendment} no longer applies "
                    f"({', '.join(self.rejects)})" if self.rejects else "an amendment is wanted")
        parts = [f"{p} ({len(regions(s))} region(s))" for p, s in self.files.items()]
        return ", ".join(parts + [f"{p} ({state}: not a text conflict)"
                                  for p, state, _ in self.other])


class NewConflict(PatchError):
    def __init__(self, message: str, stop: Stop) -> None:
        super().__init__(message)
        self.stop = stop


@dataclass
class Carry:
    """The outcome of carrying `parent` onto `target`."""

    parent: str
    target: Version
    steps: list[Step] = field(default_factory=list)

    @property
    def how(self) -> str:
        amended = sum(s.amended for s in self.steps)
        extra = f", {amended} recorded amendment(s)" if amended else ""
        if all(s.status == CLEAN for s in self.steps):
            return "applies as is" + extra
        replayed = sum(len(s.replayed) for s in self.steps)
        return ("three-way merge" + (f", {replayed} recorded resolution(s)" if replayed else "")
                + extra)


def derived_comment(parent: str) -> str:
    """The header of a stored derived series' series.toml."""
    return (f"Derived from {parent} by `fetchmail-harness series regenerate`: fix {parent}'s "
            "patches (or the canonical series) and regenerate; do not edit these files.")


def commit_series(tree: MaintainerTree, series: Series, base_commit: str) -> list[str]:
    """The series as commits on `base_commit` (branch carry/parent); PatchError if it does not
    apply there with `git am`."""
    tree.checkout_branch("carry/parent", base_commit)
    commits = []
    for patch in series.patches:
        proc = tree.am(patch.path)
        if proc.returncode != 0:
            raise PatchError(
                f"{series.name}: {patch.name} does not apply with `git am` to its own base "
                f"{series.base}:\n{(proc.stdout + proc.stderr).strip()}")
        commits.append(tree.head())
    return commits


def parse_span(text: str) -> tuple[Version, Version]:
    """An amendments dir's name: one release (6.3.26) or a range of them (6.3.0..6.3.10)."""
    first, _, last = text.partition("..")
    lo, hi = Version.parse(first), Version.parse(last or first)
    if lo > hi:
        raise ConfigError(f"amendments for {text}: {lo} comes after {hi}")
    return lo, hi


def amendments_dir(owner: Path, target: Version) -> Path:
    """Where the amendments for carrying onto `target` are recorded, in the owner series' dir:
    amendments/RELEASE/ or amendments/FIRST..LAST/ (every release of a 3way range in it), a
    diff per patch, applied on top of that patch once it is carried (for what merges cleanly
    but does not fit the release, e.g. a declaration another header holds there)."""
    root = owner / AMENDMENTS_DIR
    spans = [d for d in sorted(root.iterdir()) if d.is_dir()] if root.is_dir() else []
    hits = [d for d in spans if (span := parse_span(d.name))[0] <= target <= span[1]]
    if len(hits) > 1:
        raise ConfigError(f"{target} lies in several amendment ranges: "
                          f"{', '.join(d.name for d in hits)}")
    return hits[0] if hits else root / str(target)


def carry(tree: MaintainerTree, parent: Series, commits: list[str], target: Version,
          target_commit: str, store: ResolutionStore, amendments: Path | None = None,
          stop_after: str | None = None) -> Carry:
    """Cherry-pick `commits` (the parent's patches, in order) onto `target_commit`, then apply
    each patch's recorded amendment (amendments/<patch>.diff) into its commit.

    Raises NewConflict at the first conflict region that no record resolves (the tree left
    mid cherry-pick), at an amendment that no longer applies, or (kind "amend") once the
    patch `stop_after` is carried, with its amendment in the worktree for a human to edit.
    """
    result = Carry(parent.name, target)
    tree.checkout_branch("carry/target", target_commit)
    for patch, commit in zip(parent.patches, commits, strict=True):
        as_is, _offset = tree.apply_check(commit)
        outcome = tree.cherry_pick(commit)
        if outcome == "empty":
            raise PatchError(f"{patch.name} of {parent.name} changes nothing on {target}: is "
                             "it already upstream there? A derived series keeps every patch")
        used: list[str] = []
        if outcome == "picked":
            status = CLEAN if as_is else MERGED
        else:
            used, stop = _replay(tree, store, patch.name)
            if stop is not None:
                raise NewConflict(f"{patch.name} of {parent.name} conflicts with fetchmail "
                                  f"{target} in {stop.summary()}", stop)
            if tree.continue_pick() == "empty":
                raise PatchError(f"{patch.name} of {parent.name} resolved to no change on "
                                 f"{target}")
            status = REPLAYED
        diff = amendments / f"{Path(patch.name).stem}.diff" if amendments else None
        amended = _amend(tree, patch.name, diff, stop=patch.name == stop_after)
        if amended is not None:
            raise NewConflict(f"{patch.name} of {parent.name} on fetchmail {target}: "
                              f"{amended.summary()}", amended)
        result.steps.append(Step(patch.name, status, tuple(used),
                                 diff is not None and diff.is_file()))
    return result


def _amend(tree: MaintainerTree, patch: str, diff: Path | None, stop: bool) -> Stop | None:
    """Apply the amendment into HEAD; a Stop if it no longer applies or `stop` asks for one
    (the amendment then left in the worktree, uncommitted)."""
    if diff is None or not diff.is_file():
        return Stop(patch, {}, [], tree.path, "amend", diff) if stop else None
    proc = tree.git("apply", "--reject", "--whitespace=nowarn", str(diff), check=False)
    if proc.returncode != 0 or stop:
        rejects = sorted(str(p.relative_to(tree.path))[:-4] for p in tree.path.rglob("*.rej"))
        return Stop(patch, {}, [], tree.path, "amend", diff, rejects)
    tree.git("add", "-A")
    tree.git("commit", "--quiet", "--amend", "--no-edit", "--allow-empty")
    return None


def _replay(tree: MaintainerTree, store: ResolutionStore,
            patch: str) -> tuple[list[str], Stop | None]:
    """Resolve what the records know; `git add` fully resolved files. The Stop, if any."""
    used: list[str] = []
    pending: dict[str, list[Segment]] = {}
    other: list[tuple[str, str, tuple[str, ...]]] = []
    for conflict in tree.unmerged():
        if conflict.state != "UU":
            stages = tree.stages(conflict.path)
            action = store.decision(conflict.path, conflict.state, stages)
            if action == DELETE:
                tree.git("rm", "--quiet", "--cached", "--", conflict.path)
                (tree.path / conflict.path).unlink(missing_ok=True)
            elif action == THEIRS:
                tree.git("checkout", "--theirs", "--", conflict.path)
                tree.git("add", "--", conflict.path)
            else:
                other.append((conflict.path, conflict.state, stages))
                continue
            used.append(decision_key(conflict.path, conflict.state, stages))
            continue
        file = tree.path / conflict.path
        segments = parse_conflicts(file.read_text(errors="surrogateescape"))
        known: dict[str, tuple[str, ...]] = {}
        for region in regions(segments):
            lines = store.lookup(region)
            if lines is not None:
                known[region.key] = lines
                used.append(region.key)
        file.write_text(render(segments, known), errors="surrogateescape")
        if any(r.key not in known for r in regions(segments)):
            # what the human sees: recorded regions already resolved, the rest as markers
            pending[conflict.path] = parse_conflicts(file.read_text(errors="surrogateescape"))
        else:
            tree.git("add", "--", conflict.path)
    if pending or other:
        return used, Stop(patch, pending, other, tree.path)
    return used, None


def export(tree: MaintainerTree, target_commit: str, parent: Series, out: Path, *, name: str,
           base: Version, description: str, derived_from: str | None, comment: str) -> Series:
    """`git format-patch` of target_commit..HEAD into `out` with the parent's patch names."""
    raw = out.parent / f".{out.name}.format-patch"
    shutil.rmtree(raw, ignore_errors=True)
    numbering = numbering_of([p.path.read_text(errors="replace") for p in parent.patches])
    files = tree.format_patches(target_commit, raw, numbering)
    names = [p.name for p in parent.patches]
    if len(files) != len(names):
        raise PatchError(f"{tree.path}: {len(files)} commits on top of {base}, but "
                         f"{parent.name} has {len(names)} patches")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for src, patch_name in zip(files, names, strict=True):
        os.replace(src, out / patch_name)
    shutil.rmtree(raw, ignore_errors=True)
    atomic_write(out / TABLE_FILE, series_file_text(name, base, description, names, comment,
                                                    derived_from))
    return load_series_dir(out)


# -- per-release variants of a 3way range ------------------------------------------------------


def variant_key(series: Series, store: ResolutionStore, amendments: Path,
                target_commit: str) -> str:
    h = hashlib.sha256(f"{series.content_hash()}\0{store.content_hash()}\0{target_commit}\0"
                       f"{DERIVE_VERSION}\0".encode())
    for diff in sorted(amendments.glob("*.diff")) if amendments.is_dir() else []:
        h.update(diff.name.encode() + b"\0" + diff.read_bytes())
    return h.hexdigest()


def variant(source: FetchmailSource, series: Series, version: Version) -> tuple[Series, Carry]:
    """`series` carried onto `version` (cached): a series that applies there at fuzz 0.

    PatchError (NewConflict) when a conflict has no recorded resolution: the maintainer runs
    `fetchmail-harness series regenerate`, which stops there for a human.
    """
    store = ResolutionStore(series.resolutions)
    commit = source.commit(version)
    amendments = amendments_dir(series.directory, version)
    key = variant_key(series, store, amendments, commit)
    root = paths.cache_dir() / "derived"
    home = root / f"{series.name}-{version}-{key[:12]}"
    done = home / series.name
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{home.name}.lock")):
        if (home / "carry.txt").is_file():
            return load_series_dir(done), _read_carry(home / "carry.txt", series.name, version)
        with tempfile.TemporaryDirectory(prefix=".work-", dir=root) as tmp:
            tree = MaintainerTree.clone(Path(source.ensure_mirror().git_dir), Path(tmp) / "src")
            commits = commit_series(tree, series, source.commit(series.base))
            try:
                result = carry(tree, series, commits, version, commit, store, amendments)
            except NewConflict as exc:
                raise PatchError(
                    f"{exc}. Run `fetchmail-harness series regenerate` to resolve it once "
                    f"(it is then recorded in {series.directory} and replayed)") from exc
            staged = Path(tmp) / "out" / series.name
            export(tree, commit, series, staged, name=series.name, base=version,
                   description=series.description, derived_from=series.name,
                   comment=f"{series.name} carried onto {version} (three-way merge); "
                           "derived by fetchmail-harness, not stored")
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            os.replace(staged, done)
            atomic_write(home / "carry.txt", "\n".join(
                f"{s.patch} {s.status} {int(s.amended)} {' '.join(s.replayed)}".rstrip()
                for s in result.steps) + "\n")
    return load_series_dir(done), result


def _read_carry(file: Path, parent: str, version: Version) -> Carry:
    result = Carry(parent, version)
    for line in file.read_text().splitlines():
        patch, status, amended, *used = line.split()
        result.steps.append(Step(patch, status, tuple(used), amended == "1"))
    return result
