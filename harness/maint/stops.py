"""Where `series regenerate` stops for a human, and how it records what the human did.

The stop leaves the maintainer worktree (cache/regenerate/src) with the conflict, saves what
--continue needs (state.json, the conflicted files as first seen in conflicts/) and says what
to do. Recording turns the human's work into records under patches/<line>/: each resolved
conflict region, each decision about a file (delete / theirs), or an amendment.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import paths
from harness.atomic import atomic_write
from harness.errors import ConfigError, PatchError
from harness.series.derive import Stop
from harness.series.resolutions import (
    DELETE,
    THEIRS,
    FileDecision,
    Resolution,
    ResolutionStore,
    extract,
    parse_conflicts,
    regions,
)
from harness.series.table import RESOLUTIONS_DIR, Series
from harness.source.versions import Version
from harness.source.worktree import MaintainerTree

Say = Callable[[str], None]
STATE = "state.json"


def work_dir() -> Path:
    return paths.cache_dir() / "regenerate"


@dataclass
class StopState:
    """What --continue needs: which line's records get the resolution, and the conflicts."""

    owner: str  # the series whose resolutions/ (or amendments/) records it
    parent: str
    target: str
    patch: str
    patches_dir: str
    files: list[str]  # conflicted paths (their marker snapshots are in conflicts/)
    kind: str = "conflict"  # or "amend": record `git diff HEAD` as the patch's amendment
    amendment: str = ""
    decisions: list[list[Any]] = field(default_factory=list)  # [path, state, stages] of the
    # conflicts not in a file's text, to record as a delete/theirs decision


def stopped(stop: Stop, owner: Series, parent: Series, target: Version,
             patches_dir: Path) -> PatchError:
    """Save what --continue needs and say what to do."""
    directory = work_dir()
    snapshots = directory / "conflicts"
    shutil.rmtree(snapshots, ignore_errors=True)
    for path in stop.files:
        file = snapshots / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text((stop.tree / path).read_text(errors="surrogateescape"),
                        errors="surrogateescape")
    state = StopState(owner.name, parent.name, str(target), stop.patch, str(patches_dir),
                      sorted(stop.files), stop.kind, str(stop.amendment or ""),
                      [[path, kind, list(stages)] for path, kind, stages in stop.other])
    atomic_write(directory / STATE, json.dumps(asdict(state), indent=2) + "\n")
    if stop.kind == "amend":
        return PatchError("\n".join([
            f"{stop.patch} of {parent.name}, carried onto fetchmail {target} (deriving "
            f"{owner.name}): {stop.summary()}.",
            f"The tree is at that patch (HEAD); the amendment, as far as it applies, is in the "
            f"worktree{' (rejected hunks: *.rej files)' if stop.rejects else ''}.",
            "Make the change this release needs on top of the patch:",
            f"  cd {stop.tree}",
            "  edit the files (uncommitted: `git diff HEAD` is the amendment)",
            "  fetchmail-harness series regenerate --continue",
            f"It is recorded as {stop.amendment} (no change: the amendment is dropped) and "
            "applied from then on (commit it with the series).",
            "Or give up: fetchmail-harness series regenerate --abort",
        ]))
    lines = [f"{stop.patch} of {parent.name} conflicts with fetchmail {target} and no "
             f"recorded resolution fits (deriving {owner.name}):"]
    for path, segments in stop.files.items():
        lines.append(f"  {path}: {len(regions(segments))} conflict region(s)")
    for path, kind, _ in stop.other:
        what = {"DU": "the release has no such file; the patch changes it",
                "UD": "the patch deletes it; the release changed it"}.get(kind, kind)
        lines.append(f"  {path}: {what}: `git rm {path}` keeps it away (the patch's change to "
                     f"it is dropped), `git checkout --theirs {path} && git add {path}` takes "
                     "the patch's version; anything else the release needs: an amendment "
                     "(`series amend`) once this is recorded")
    lines += [
        "Markers: <<<<<<< upstream (the release with the patches before) | ||||||| base "
        f"({parent.name}'s base {parent.base}) | ======= | >>>>>>> patch.",
        "Regions with a recorded resolution are already resolved. To resolve the rest once:",
        f"  cd {stop.tree}",
        "  edit each region above (only inside it: lines around it must stay as they are), "
        "then `git add FILE...`",
        "  fetchmail-harness series regenerate --continue",
        f"Each resolved region is recorded in {patches_dir / owner.name / 'resolutions'}/ "
        "and replayed from then on (commit it with the series).",
        "Or give up: fetchmail-harness series regenerate --abort",
    ]
    return PatchError("\n".join(lines))


def load_state() -> StopState | None:
    file = work_dir() / STATE
    if not file.is_file():
        return None
    try:
        return StopState(**json.loads(file.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"unreadable {file}: {exc}; `series regenerate --abort` drops it") \
            from exc


def record(state: StopState, tree: MaintainerTree, say: Say) -> None:
    """Record what the maintainer did in the stopped worktree: the amendment, or each resolved
    region and each decision about a file, in patches/<owner>/."""
    if state.kind == "amend":
        record_amendment(tree, Path(state.amendment), say)
        return
    if not tree.picking():
        raise PatchError(f"{tree.path} is no longer in the middle of the cherry-pick of "
                         f"{state.patch}: `series regenerate --abort` and start again")
    left = tree.unmerged()
    if left:
        raise PatchError("still conflicted: " + ", ".join(c.describe() for c in left)
                         + f"\nEdit them in {tree.path}, `git add` them, then --continue.")
    markers = tree.staged_markers()
    if markers:
        raise PatchError(f"conflict markers are still staged in {', '.join(markers)}: "
                         "remove them, `git add` again, then --continue.")
    store = ResolutionStore(Path(state.patches_dir) / state.owner / RESOLUTIONS_DIR)
    recorded = 0
    note = f"carrying {state.parent} onto {state.target}"
    for path, kind, stages in state.decisions:
        store.add(FileDecision(path, kind, tuple(stages), _decision(tree, path, stages),
                               state.patch, note))
        recorded += 1
    for path in state.files:
        snapshot = (work_dir() / "conflicts" / path).read_text(errors="surrogateescape")
        resolved = tree.git("show", f":{path}").stdout
        for region, lines in extract(parse_conflicts(snapshot), resolved, path):
            store.add(Resolution(region, lines, path, state.patch, note))
            recorded += 1
    store.write()
    say(f"recorded {recorded} resolution(s) in {store.directory}")
    tree.abort_pick()


def _decision(tree: MaintainerTree, path: str, stages: list[str]) -> str:
    """DELETE or THEIRS, from what the maintainer did with the file in the index."""
    entry = tree.git("ls-files", "-s", "--", path).stdout.split()
    if not entry:
        return DELETE
    theirs = next((s.split(":", 1)[1] for s in stages if s.startswith("3:")), None)
    if entry[1] == theirs:
        return THEIRS
    raise PatchError(f"{path}: only `git rm` (keep it away) or the patch's version (`git "
                     "checkout --theirs`) can be recorded for this conflict; make any other "
                     "change afterwards as an amendment (`fetchmail-harness series amend`)")


def record_amendment(tree: MaintainerTree, file: Path, say: Say) -> None:
    for junk in [*tree.path.rglob("*.rej"), *tree.path.rglob("*.orig")]:
        junk.unlink()
    tree.git("add", "-A")
    diff = tree.git("diff", "--cached", "--binary", "HEAD").stdout
    if diff.strip():
        atomic_write(file, diff)
        say(f"recorded the amendment {file} ({len(diff.splitlines())} lines)")
    elif file.is_file():
        file.unlink()
        drop_empty_dirs(file.parent)
        say(f"no change: dropped the amendment {file}")
    else:
        say("no change: nothing recorded")
    tree.git("reset", "--quiet", "--hard", "HEAD")


def drop_empty_dirs(directory: Path) -> None:
    """Remove `directory` and its subdirectories that hold no file any more."""
    if not directory.is_dir():
        return
    for sub in sorted((p for p in directory.rglob("*") if p.is_dir()), reverse=True):
        if not any(sub.iterdir()):
            sub.rmdir()
    if not any(directory.iterdir()):
        directory.rmdir()
