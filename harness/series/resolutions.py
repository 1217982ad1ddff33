"""Recorded conflict resolutions: what a maintainer wrote once for a conflict, replayed after.

Like `git rerere`, but only the conflicted region is kept (never a whole upstream file): a
record holds the upstream side ("ours": the release with the patches before), the merge base,
the patch's side ("theirs") and the resolution. It is keyed by ours + theirs, so the same
conflict met again (another release with the same code there, or the canonical series changed
elsewhere) is resolved the same way, while a conflict that changed in any way needs a human.

A record is a text file patches/<line>/resolutions/<key>.resolution: `#` header lines, then
one line per content line, prefixed `<` (ours), `|` (base), `>` (theirs) or `=` (resolution).

A conflict that is not in the text (the patch changes a file the release does not have, or
the like) is recorded as a decision about the whole file: `# decision: delete` (the file stays
away) or `# decision: theirs` (the patch's version of it), keyed by the path, the kind of
conflict and the blobs of its sides.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, PatchError

SUFFIX = ".resolution"
_START, _BASE, _MID, _END = "<<<<<<<", "|||||||", "=======", ">>>>>>>"
_PREFIX = {"ours": "<", "base": "|", "theirs": ">", "resolution": "="}


def _marker(line: str, marker: str) -> bool:
    return line.rstrip("\n") == marker or line.startswith(marker + " ")


@dataclass(frozen=True)
class Region:
    """One conflict region of a diff3-style merge (lines keep their newlines)."""

    ours: tuple[str, ...]
    base: tuple[str, ...]
    theirs: tuple[str, ...]

    @property
    def key(self) -> str:
        h = hashlib.sha256()
        for side in (self.ours, self.theirs):
            h.update("".join(side).encode() + b"\0\0")
        return h.hexdigest()[:20]


Segment = str | Region  # a common line, or a conflict region


def parse_conflicts(text: str) -> list[Segment]:
    """A merged file with diff3 markers as common lines and regions; PatchError if malformed."""
    out: list[Segment] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if not _marker(lines[i], _START):
            out.append(lines[i])
            i += 1
            continue
        sides: dict[str, list[str]] = {"ours": [], "base": [], "theirs": []}
        side = "ours"
        start = i
        i += 1
        while i < len(lines) and not _marker(lines[i], _END):
            if _marker(lines[i], _BASE) and side == "ours":
                side = "base"
            elif lines[i].rstrip("\n") == _MID and side in ("ours", "base"):
                side = "theirs"
            else:
                sides[side].append(lines[i])
            i += 1
        if i >= len(lines) or side != "theirs":
            raise PatchError(f"unterminated conflict region starting at line {start + 1}")
        out.append(Region(tuple(sides["ours"]), tuple(sides["base"]), tuple(sides["theirs"])))
        i += 1
    return out


def regions(segments: Iterable[Segment]) -> list[Region]:
    return [s for s in segments if isinstance(s, Region)]


def render(segments: Iterable[Segment], resolved: dict[str, tuple[str, ...]],
           labels: tuple[str, str, str] = ("upstream", "base", "patch")) -> str:
    """The file with recorded regions replaced and the others written back as diff3 markers."""
    out: list[str] = []
    for seg in segments:
        if isinstance(seg, str):
            out.append(seg)
        elif seg.key in resolved:
            out.extend(resolved[seg.key])
        else:
            out.append(f"{_START} {labels[0]}\n")
            out.extend(seg.ours)
            out.append(f"{_BASE} {labels[1]}\n")
            out.extend(seg.base)
            out.append(f"{_MID}\n")
            out.extend(seg.theirs)
            out.append(f"{_END} {labels[2]}\n")
    return "".join(out)


@dataclass(frozen=True)
class Resolution:
    region: Region
    lines: tuple[str, ...]
    path: str  # the file it was recorded in (informational)
    patch: str  # the patch being carried (informational)
    note: str  # where it was recorded (informational)

    @property
    def key(self) -> str:
        return self.region.key

    def text(self) -> str:
        head = [
            "# fetchmail-harness recorded conflict resolution; replayed when this exact "
            "conflict comes back",
            f"# file: {self.path}",
            f"# patch: {self.patch}",
            f"# recorded: {self.note}",
        ]
        body: list[str] = []
        for name, side in (("ours", self.region.ours), ("base", self.region.base),
                           ("theirs", self.region.theirs), ("resolution", self.lines)):
            body.extend(_PREFIX[name] + _newline(line) for line in side)
        return "\n".join(head) + "\n" + "".join(body)


def _newline(line: str) -> str:
    return line if line.endswith("\n") else line + "\n"


def parse_record(text: str, where: str) -> Resolution | FileDecision:
    """A region resolution or a file decision, by its header."""
    meta = dict(line[1:].partition(":")[::2] for line in text.splitlines()
                if line.startswith("#"))
    meta = {k.strip(): v.strip() for k, v in meta.items()}
    if "decision" not in meta:
        return parse_resolution(text, where)
    state, *stages = meta.get("conflict", "").split()
    if meta["decision"] not in (DELETE, THEIRS) or not state:
        raise ConfigError(f"{where}: a decision is `delete` or `theirs`, with a `conflict:` line")
    return FileDecision(meta.get("file", "?"), state, tuple(stages), meta["decision"],
                        meta.get("patch", "?"), meta.get("recorded", ""))


def parse_resolution(text: str, where: str) -> Resolution:
    meta: dict[str, str] = {}
    sides: dict[str, list[str]] = {name: [] for name in _PREFIX}
    by_prefix = {p: name for name, p in _PREFIX.items()}
    order = list(_PREFIX)
    last = 0
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            meta[key.strip()] = value.strip()
            continue
        name = by_prefix.get(line[:1])
        if name is None or order.index(name) < last:
            raise ConfigError(f"{where}:{n}: expected a line starting with < | > or = in "
                              "that order")
        last = order.index(name)
        sides[name].append(line[1:])
    region = Region(tuple(sides["ours"]), tuple(sides["base"]), tuple(sides["theirs"]))
    return Resolution(region, tuple(sides["resolution"]), meta.get("file", "?"),
                      meta.get("patch", "?"), meta.get("recorded", ""))


DELETE, THEIRS = "delete", "theirs"


@dataclass(frozen=True)
class FileDecision:
    """What to do with a file whose conflict is not in its text (git's DU, UD, AU, UA, ...)."""

    path: str
    state: str  # git's two letters
    stages: tuple[str, ...]  # "<stage>:<blob>" of the unmerged index entries
    action: str  # DELETE or THEIRS
    patch: str
    note: str

    @property
    def key(self) -> str:
        return decision_key(self.path, self.state, self.stages)

    def text(self) -> str:
        return "\n".join([
            "# fetchmail-harness recorded conflict resolution; replayed when this exact "
            "conflict comes back",
            f"# file: {self.path}",
            f"# patch: {self.patch}",
            f"# recorded: {self.note}",
            f"# conflict: {self.state} {' '.join(self.stages)}",
            f"# decision: {self.action}",
        ]) + "\n"


def decision_key(path: str, state: str, stages: tuple[str, ...]) -> str:
    h = hashlib.sha256(f"{path}\0{state}\0{' '.join(stages)}".encode())
    return h.hexdigest()[:20]


class ResolutionStore:
    """The records of one line (patches/<line>/resolutions/), and which of them were used."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.records: dict[str, Resolution | FileDecision] = {}
        self.used: set[str] = set()
        if directory.is_dir():
            for file in sorted(directory.glob(f"*{SUFFIX}")):
                record = parse_record(file.read_text(), str(file))
                if file.stem != record.key:
                    raise ConfigError(f"{file}: its conflict has key {record.key}, not "
                                      f"{file.stem}: was it edited? Rename it or record it anew")
                self.records[record.key] = record

    def lookup(self, region: Region) -> tuple[str, ...] | None:
        record = self.records.get(region.key)
        if not isinstance(record, Resolution):
            return None
        self.used.add(region.key)
        return record.lines

    def decision(self, path: str, state: str, stages: tuple[str, ...]) -> str | None:
        key = decision_key(path, state, stages)
        record = self.records.get(key)
        if not isinstance(record, FileDecision):
            return None
        self.used.add(key)
        return record.action

    def add(self, record: Resolution | FileDecision) -> None:
        self.records[record.key] = record
        self.used.add(record.key)

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for key in sorted(self.records):
            h.update(self.records[key].text().encode())
        return h.hexdigest()

    def write(self, directory: Path | None = None, only_used: bool = False) -> list[str]:
        """Write the records (every one, or only those used) to `directory`; returns what
        was removed as unused."""
        target = directory or self.directory
        keep = {k: r for k, r in self.records.items() if not only_used or k in self.used}
        removed = []
        if target.is_dir():
            for file in target.glob(f"*{SUFFIX}"):
                if file.stem not in keep:
                    file.unlink()
                    removed.append(file.stem)
        if keep:
            target.mkdir(parents=True, exist_ok=True)
        for key, record in keep.items():
            file = target / f"{key}{SUFFIX}"
            text = record.text()
            if not file.is_file() or file.read_text() != text:
                file.write_text(text)
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        return sorted(removed)


def extract(segments: list[Segment], resolved_text: str,
            path: str) -> list[tuple[Region, tuple[str, ...]]]:
    """Each conflict region of `segments` with the text a human put in its place.

    The lines outside the regions must be unchanged: a change there cannot be replayed as a
    resolution, so it is a PatchError naming the lines (make it in the canonical series).
    """
    sentinels = {i: seg for i, seg in enumerate(segments) if isinstance(seg, Region)}
    a: list[object] = [object() if isinstance(seg, Region) else seg for seg in segments]
    b = resolved_text.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    found: dict[int, tuple[str, ...]] = {}
    outside: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        hit = [i for i in range(i1, i2) if i in sentinels]
        if len(hit) == 1 and i2 - i1 == 1:
            found[hit[0]] = tuple(b[j1:j2])
        else:
            outside.append(f"lines {j1 + 1}-{j2} of the resolved {path}"
                           if j2 > j1 else f"around line {j1 + 1} of the resolved {path}")
    if outside:
        raise PatchError(
            f"{path}: the resolution changes lines outside the conflict regions "
            f"({'; '.join(outside)}). Only what replaces a conflict region can be recorded "
            "and replayed: make other changes in the canonical series, or keep the conflict "
            "region's neighbours as they were.")
    return [(sentinels[i], found.get(i, ())) for i in sorted(sentinels)]
