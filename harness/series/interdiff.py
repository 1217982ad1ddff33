"""How two patch series differ, patch by patch, ignoring context and line-number churn.

Patches are matched by file name. Two patches count as the same when their commit messages
and, per file, the runs of +/- lines (the "change blocks") are equal: a regenerated series has
fresh context and hunk line numbers, and that is noise to a reviewer. What is left is shown as
an interdiff of the change blocks: the outer column says A -> B, the inner one is the
patch's own +/-.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.series.table import Series

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_DIFF_GIT = re.compile(r"^diff --git a/(.*) b/(.*)$")
_SUBJECT_PREFIX = re.compile(r"^\[PATCH[^\]]*\]\s*")
_META_KEEP = ("new file mode", "deleted file mode", "rename from", "rename to", "old mode",
              "new mode", "Binary files", "GIT binary patch")

Block = tuple[str, ...]


@dataclass
class FileChange:
    """What one patch does to one file: metadata lines and change blocks (no context)."""

    path: str
    meta: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = list(self.meta)
        for n, block in enumerate(self.blocks):
            if n or out:
                out.append("~")  # separates change blocks
            out.extend(block)
        return out

    def counts(self) -> tuple[int, int]:
        added = sum(1 for b in self.blocks for ln in b if ln.startswith("+"))
        removed = sum(1 for b in self.blocks for ln in b if ln.startswith("-"))
        return added, removed


@dataclass
class ParsedPatch:
    message: list[str]
    files: dict[str, FileChange]


def parse_patch(text: str) -> ParsedPatch:
    """Commit message and per-file change blocks of a `git format-patch` (or plain -p1) patch."""
    lines = text.splitlines()
    message = _message(lines)
    files: dict[str, FileChange] = {}
    current: FileChange | None = None
    git_header = False  # inside a `diff --git` header, before its ---/+++ lines
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _DIFF_GIT.match(line)
        if m:
            current = files.setdefault(m[2], FileChange(m[2]))
            git_header = True
            i += 1
            continue
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            target = _strip_prefix(lines[i + 1][4:])
            if target == "/dev/null":
                target = _strip_prefix(line[4:])
            if not git_header:  # a plain diff names its files here only
                current = files.setdefault(target, FileChange(target))
            git_header = False
            i += 2
            continue
        if current is None:
            i += 1
            continue
        h = _HUNK.match(line)
        if h:
            git_header = False
            old = int(h[1]) if h[1] is not None else 1
            new = int(h[2]) if h[2] is not None else 1
            i = _read_hunk(lines, i + 1, old, new, current)
            continue
        if line.startswith(_META_KEEP):
            current.meta.append(line)
        i += 1
    return ParsedPatch(message, files)


def _strip_prefix(path: str) -> str:
    path = path.split("\t")[0].strip()
    return path[2:] if path[:2] in ("a/", "b/") else path


def _read_hunk(lines: list[str], i: int, old: int, new: int, into: FileChange) -> int:
    block: list[str] = []
    while i < len(lines) and (old > 0 or new > 0 or lines[i].startswith("\\")):
        line = lines[i]
        tag = line[:1]
        if tag in ("-", "+", "\\"):
            block.append(line)
            old -= tag == "-"
            new -= tag == "+"
        else:  # context (an empty line is context whose space was stripped)
            if block:
                into.blocks.append(tuple(block))
                block = []
            old -= 1
            new -= 1
        i += 1
    if block:
        into.blocks.append(tuple(block))
    return i


def _message(lines: list[str]) -> list[str]:
    """Subject (without [PATCH n/m]) and body of a format-patch mail; [] for a plain diff."""
    if not lines or not (lines[0].startswith("From ") or lines[0].startswith("From:")):
        return []
    subject: list[str] = []
    i = 0
    while i < len(lines) and lines[i].strip():  # headers
        if lines[i].startswith("Subject:"):
            subject = [lines[i][len("Subject:"):].strip()]
            while i + 1 < len(lines) and lines[i + 1][:1] in (" ", "\t"):
                i += 1
                subject.append(lines[i].strip())
        i += 1
    body: list[str] = []
    for line in lines[i + 1:]:
        if line == "---" or _DIFF_GIT.match(line):
            break
        body.append(line)
    while body and not body[-1].strip():
        body.pop()
    return [_SUBJECT_PREFIX.sub("", " ".join(subject)), *(["", *body] if body else [])]


# -- comparing series ---------------------------------------------------------------------------


@dataclass
class PatchDiff:
    name: str
    status: str  # "only in A", "only in B", "identical", "changed"
    refreshed: bool = False  # identical changes, but context/line numbers differ
    message_diff: list[str] = field(default_factory=list)
    file_diffs: dict[str, list[str]] = field(default_factory=dict)

    def stat(self) -> str:
        if self.status != "changed":
            return self.status + (" (context/line numbers refreshed)" if self.refreshed else "")
        parts = []
        for path, diff in self.file_diffs.items():
            plus = sum(1 for ln in diff if ln.startswith("+") and not ln.startswith("+++"))
            minus = sum(1 for ln in diff if ln.startswith("-") and not ln.startswith("---"))
            parts.append(f"{path} (+{plus} -{minus})")
        if self.message_diff:
            parts.append("commit message")
        return "changed: " + ", ".join(parts)


def compare_patches(name: str, a_text: str, b_text: str) -> PatchDiff:
    a, b = parse_patch(a_text), parse_patch(b_text)
    result = PatchDiff(name, "identical")
    if a.message != b.message:
        result.message_diff = list(
            difflib.unified_diff(a.message, b.message, "A/message", "B/message", lineterm="", n=2)
        )
    for path in sorted(set(a.files) | set(b.files)):
        fa = a.files.get(path)
        fb = b.files.get(path)
        la = fa.lines() if fa else []
        lb = fb.lines() if fb else []
        if la == lb and (fa is None) == (fb is None):
            continue
        diff = difflib.unified_diff(
            la, lb, f"A/{path}" if fa else "/dev/null", f"B/{path}" if fb else "/dev/null",
            lineterm="", n=2,
        )
        # positions in a list of change lines mean nothing to a reader: keep bare @@ marks
        result.file_diffs[path] = ["@@" if ln.startswith("@@ ") else ln for ln in diff]
    if result.message_diff or result.file_diffs:
        result.status = "changed"
    elif _strip_volatile(a_text) != _strip_volatile(b_text):
        result.refreshed = True
    return result


def _strip_volatile(text: str) -> str:
    """A patch without what changes on every export: From sha, index lines, signature."""
    out = []
    for line in text.splitlines():
        if line == "-- ":
            break
        if line.startswith(("From ", "index ")) and not line.startswith("From:"):
            continue
        out.append(line)
    return "\n".join(out)


def compare_series(a: Series, b: Series) -> list[PatchDiff]:
    """Per patch name, in A's order then B's extra ones."""
    b_by_name = {p.name: p for p in b.patches}
    a_names = {p.name for p in a.patches}
    results = []
    for p in a.patches:
        other = b_by_name.get(p.name)
        if other is None:
            results.append(PatchDiff(p.name, "only in A"))
        else:
            results.append(compare_patches(p.name, _read(p.path), _read(other.path)))
    results.extend(PatchDiff(p.name, "only in B") for p in b.patches if p.name not in a_names)
    return results


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


def render(a: Series, b: Series, diffs: list[PatchDiff], stat: bool) -> Iterator[str]:
    yield f"A = {a.name} (base {a.base}, {len(a.patches)} patches)"
    yield f"B = {b.name} (base {b.base}, {len(b.patches)} patches)"
    width = max((len(d.name) for d in diffs), default=0)
    for d in diffs:
        yield f"  {d.name:<{width}}  {d.stat()}"
    counts = {s: sum(1 for d in diffs if d.status == s) for s in
              ("identical", "changed", "only in A", "only in B")}
    yield "totals: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    if stat:
        return
    for d in diffs:
        if d.status != "changed":
            continue
        yield ""
        yield f"=== {d.name} ===  (outer column: A -> B; inner: the patch's own +/-; "\
            "~ separates change blocks)"
        yield from d.message_diff
        for diff in d.file_diffs.values():
            yield from diff
