"""Edit patches/series.toml (the version -> series table) and write patches/<series>/series.toml.

tomllib only reads, so the table is edited as text, one ``[[range]]`` block at a time: comments,
key order and blank lines outside the touched keys are kept. Every write goes to a temp file
that is parsed and checked (ranges disjoint, the wanted version maps to the wanted series)
before it replaces the original with os.replace.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write
from harness.errors import ConfigError
from harness.source.versions import Version

TABLE_HEADER = """\
# fetchmail release -> patch series. First match wins; bounds are inclusive; ranges must not
# overlap. max_fuzz: fuzz allowed when applying the series to releases in the range.
"""
_HEADER_LINE = re.compile(r"^\s*\[\[\s*range\s*\]\]\s*(#.*)?$")
_TABLE_LINE = re.compile(r"^\s*\[")
_COMMENT = re.compile(r"^\s*#")


def toml_str(text: str) -> str:
    """A TOML basic string."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def series_file_text(
    name: str, base: Version, description: str, patches: Sequence[str], comment: str = ""
) -> str:
    """The text of patches/<name>/series.toml."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [
        f"name = {toml_str(name)}",
        f"base = {toml_str(str(base))}",
        f"description = {toml_str(description)}",
        "patches = [",
        *(f"    {toml_str(p)}," for p in patches),
        "]",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Range:
    """One [[range]] entry as written in the table."""

    series: str
    first: Version
    last: Version
    max_fuzz: int

    def covers(self, version: Version) -> bool:
        return self.first <= version <= self.last

    def __str__(self) -> str:
        span = str(self.first) if self.first == self.last else f"{self.first}..{self.last}"
        return f"{self.series} {span}"


def _parse_range(data: dict[str, Any], where: str) -> Range:
    try:
        return Range(
            str(data["series"]),
            Version.parse(str(data["first"])),
            Version.parse(str(data["last"])),
            int(data.get("max_fuzz", 0)),
        )
    except (KeyError, ValueError, ConfigError) as exc:
        raise ConfigError(f"{where}: unreadable [[range]] entry {data!r}: {exc}") from exc


class TableDoc:
    """patches/series.toml as lines of text, edited block by block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = path.read_text() if path.is_file() else TABLE_HEADER
        self.lines = text.splitlines()

    # -- blocks ---------------------------------------------------------------------------------

    def _spans(self) -> list[tuple[int, int, int]]:
        """(start incl. leading comments, header line, end exclusive) per [[range]] block."""
        headers = [i for i, line in enumerate(self.lines) if _HEADER_LINE.match(line)]
        spans: list[tuple[int, int, int]] = []
        for n, head in enumerate(headers):
            start = head
            floor = spans[-1][1] + 1 if spans else 0
            while start - 1 >= floor and _COMMENT.match(self.lines[start - 1]):
                start -= 1
            end = headers[n + 1] if n + 1 < len(headers) else len(self.lines)
            for i in range(head + 1, end):  # another kind of table ends the block
                if _TABLE_LINE.match(self.lines[i]):
                    end = i
                    break
            spans.append((start, head, end))
        # trailing comments directly above the next header belong to that header
        fixed = []
        for n, (start, head, end) in enumerate(spans):
            if n + 1 < len(spans):
                end = min(end, spans[n + 1][0])
            fixed.append((start, head, end))
        return fixed

    def ranges(self) -> list[Range]:
        data = self.parsed()
        items = data.get("range", [])
        if not isinstance(items, list):
            raise ConfigError(f"{self.path}: `range` must be an array of tables ([[range]])")
        return [_parse_range(item, f"{self.path} [[range]] #{i}") for i, item in
                enumerate(items, 1)]

    def text(self) -> str:
        return "\n".join(self.lines).rstrip("\n") + "\n"

    def parsed(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"malformed TOML in {self.path}: {exc}") from exc

    # -- edits ----------------------------------------------------------------------------------

    def set_key(self, index: int, key: str, value: str | int) -> None:
        """Set `key` of the index-th [[range]] block, keeping a trailing comment."""
        _start, head, end = self._spans()[index]
        rendered = toml_str(value) if isinstance(value, str) else str(value)
        pattern = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s#]+)(.*)$")
        for i in range(head + 1, end):
            m = pattern.match(self.lines[i])
            if m:
                self.lines[i] = f"{m[1]}{rendered}{m[3]}"
                return
        last_key = max(
            (i for i in range(head, end) if self.lines[i].strip()
             and not _COMMENT.match(self.lines[i])),
            default=head,
        )
        self.lines.insert(last_key + 1, f"{key} = {rendered}")

    def remove(self, index: int) -> None:
        start, _head, end = self._spans()[index]
        if end < len(self.lines) and not self.lines[end].strip():
            end += 1  # and the blank line after it
        del self.lines[start:end]

    def insert(self, index: int, entry: Range, comment: str = "") -> None:
        """Insert a block before the index-th block (at the end for index == count)."""
        block = [f"# {line}".rstrip() for line in comment.splitlines()]
        block += [
            "[[range]]",
            f"series = {toml_str(entry.series)}",
            f"first = {toml_str(str(entry.first))}",
            f"last = {toml_str(str(entry.last))}",
            f"max_fuzz = {entry.max_fuzz}",
            "",
        ]
        spans = self._spans()
        if index < len(spans):
            at = spans[index][0]
        else:
            at = len(self.lines)
            while at > 0 and not self.lines[at - 1].strip():
                at -= 1
            if at > 0:
                block.insert(0, "")
        self.lines[at:at] = block

    def save(self, check: Callable[[list[Range]], None] | None = None) -> None:
        """Check the new text (parses, disjoint ranges, `check`), then replace the file."""
        ranges = self.ranges()
        for i, a in enumerate(ranges):
            for b in ranges[i + 1:]:
                if a.first <= b.last and b.first <= a.last:
                    raise ConfigError(f"internal error: table edit made {a} overlap {b}")
        if check is not None:
            check(ranges)
        atomic_write(self.path, self.text())


# -- mapping a release to a series ------------------------------------------------------------

Applies = Callable[[Version], bool]


def map_release(
    doc: TableDoc,
    series: str,
    version: Version,
    max_fuzz: int,
    releases: Sequence[Version],
    applies: Applies | None = None,
) -> list[str]:
    """Make `version` map to `series` in the table; returns what was changed, for the report.

    A range of another series that covers `version` gives it up (shrunk or split). An existing
    range of `series` is widened when nothing else lies between it and `version` and every
    release it would newly cover passes `applies`; otherwise a one-release range is added.
    """
    releases = sorted(set(releases) | {version})
    changes: list[str] = []
    ranges = doc.ranges()
    for i, r in enumerate(ranges):
        if not r.covers(version):
            continue
        if r.series == series:
            return []
        changes.append(_carve(doc, i, r, version, releases))
        break
    ranges = doc.ranges()
    best: tuple[int, int, str] | None = None  # (gap size, index, "first"|"last")
    for i, r in enumerate(ranges):
        if r.series != series:
            continue
        if r.last < version:
            lo, hi, key = r.last, version, "last"
        elif r.first > version:
            lo, hi, key = version, r.first, "first"
        else:  # pragma: no cover - covered ranges returned above
            continue
        if any(o is not r and lo < o.last and o.first < hi for o in ranges):
            continue  # another series' range lies in between
        gap = [v for v in releases if lo < v < hi]
        if applies is not None and not all(applies(v) for v in gap):
            continue
        if best is None or len(gap) < best[0]:
            best = (len(gap), i, key)
    if best is not None:
        _, i, key = best
        old = ranges[i]
        doc.set_key(i, key, str(version))
        widened = doc.ranges()[i]
        changes.append(f"widened {old} to {widened.first}..{widened.last}")
        return changes
    entry = Range(series, version, version, max_fuzz)
    newest_first = len(ranges) > 1 and all(
        a.first > b.first for a, b in pairwise(ranges))
    if newest_first:  # keep a table written newest first that way
        at = next((i for i, r in enumerate(ranges) if r.first < version), len(ranges))
    else:
        at = next((i for i, r in enumerate(ranges) if r.first > version), len(ranges))
    doc.insert(at, entry)
    changes.append(f"added range {entry} (max_fuzz {max_fuzz})")
    return changes


def _carve(doc: TableDoc, index: int, r: Range, version: Version,
           releases: Sequence[Version]) -> str:
    """Take `version` out of the index-th range `r`."""
    below = [v for v in releases if r.first <= v < version]
    above = [v for v in releases if version < v <= r.last]
    if not below and not above:
        doc.remove(index)
        return f"removed range {r} (its series no longer applies there)"
    if not below:
        doc.set_key(index, "first", str(above[0]))
    elif not above:
        doc.set_key(index, "last", str(below[-1]))
    else:
        doc.set_key(index, "last", str(below[-1]))
        doc.insert(index + 1, Range(r.series, above[0], r.last, r.max_fuzz))
    return f"took {version} out of range {r}"
