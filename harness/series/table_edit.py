"""Edit patches/series.toml (the version -> series table) and write patches/<series>/series.toml.

The table is edited through tomlkit, which keeps comments, key order and blank lines. A range's
own comment goes below its ``[[range]]`` line (tomlkit gives a comment above a header to the
table before it), so it moves and goes with its range. Every write is parsed and checked
(ranges disjoint, the wanted version maps to the wanted series) before it replaces the
original with os.replace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Table

from harness.atomic import atomic_write
from harness.errors import ConfigError
from harness.series.table import FUZZ0, TableEntry, check_disjoint, parse_entry
from harness.source.versions import Version

TABLE_HEADER = """\
# fetchmail release -> patch series. First match wins; bounds are inclusive; ranges must not
# overlap. apply: "fuzz0" (patch -p1 -F0) or "3way" (three-way merge, verified).
# A range's comment goes below its [[range]] line.
"""


def series_file_text(
    name: str, base: Version, description: str, patches: Sequence[str], comment: str = "",
    derived_from: str | None = None,
) -> str:
    """The text of patches/<name>/series.toml."""
    doc = tomlkit.document()
    for line in comment.splitlines():
        doc.add(tomlkit.comment(line))
    doc["name"] = name
    doc["base"] = str(base)
    if derived_from:
        doc["derived_from"] = derived_from
    doc["description"] = description
    listed = tomlkit.array()
    listed.extend(patches)
    listed.multiline(True)
    doc["patches"] = listed
    return tomlkit.dumps(doc)


def _range_table(entry: TableEntry, comment: str) -> Table:
    table = tomlkit.table()
    for line in comment.splitlines():
        table.add(tomlkit.comment(line))
    table["series"] = entry.series
    table["first"] = str(entry.first)
    table["last"] = str(entry.last)
    table["apply"] = entry.apply
    table.add(tomlkit.nl())
    return table


class TableDoc:
    """patches/series.toml as a tomlkit document."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = path.read_text() if path.is_file() else TABLE_HEADER
        try:
            self.doc = tomlkit.parse(text)
        except TOMLKitError as exc:
            raise ConfigError(f"malformed TOML in {path}: {exc}") from exc

    def _aot(self, create: bool = False) -> AoT | None:
        found = self.doc.get("range")
        if found is None and create:
            self.doc.append("range", tomlkit.aot())
            found = self.doc["range"]
        if found is not None and not isinstance(found, AoT):
            raise ConfigError(f"{self.path}: `range` must be an array of tables ([[range]])")
        return found

    def ranges(self) -> list[TableEntry]:
        aot = self._aot()
        items: list[Any] = list(aot) if aot is not None else []
        return [parse_entry(item, f"{self.path} [[range]] #{i}") for i, item in
                enumerate(items, 1)]

    def text(self) -> str:
        return tomlkit.dumps(self.doc).rstrip("\n") + "\n"

    # -- edits ----------------------------------------------------------------------------------

    def set_key(self, index: int, key: str, value: str) -> None:
        aot = self._aot()
        assert aot is not None
        aot[index][key] = value

    def remove(self, index: int) -> None:
        aot = self._aot()
        assert aot is not None
        del aot[index]

    def insert(self, index: int, entry: TableEntry, comment: str = "") -> None:
        """Insert a range before the index-th one (at the end for index == count)."""
        aot = self._aot(create=True)
        assert aot is not None
        if index >= len(aot) and len(aot):
            last = aot[len(aot) - 1]
            if not tomlkit.dumps(last).endswith("\n\n"):
                last.add(tomlkit.nl())
        aot.insert(index, _range_table(entry, comment))

    def save(self, check: Callable[[list[TableEntry]], None] | None = None) -> None:
        """Check the new text (parses, disjoint ranges, `check`), then replace the file."""
        text = self.text()
        reread = tomlkit.parse(text).get("range", [])
        ranges = [parse_entry(item, f"{self.path} (as edited)") for item in reread]
        try:
            check_disjoint(ranges, f"{self.path} (as edited)")
        except ConfigError as exc:
            raise ConfigError(f"internal error: table edit made ranges overlap: {exc}") from exc
        if check is not None:
            check(ranges)
        atomic_write(self.path, text)


# -- mapping a release to a series ------------------------------------------------------------

Applies = Callable[[Version], bool]


def map_release(
    doc: TableDoc,
    series: str,
    version: Version,
    releases: Sequence[Version],
    applies: Applies | None = None,
    apply: str = FUZZ0,
) -> list[str]:
    """Make `version` map to `series` in the table; returns what was changed, for the report.

    A range of another series that covers `version` gives it up (shrunk or split). An existing
    range of `series` with the same apply method is widened when nothing else lies between it
    and `version` and every release it would newly cover passes `applies`; otherwise a
    one-release range is added.
    """
    releases = sorted(set(releases) | {version})
    changes: list[str] = []
    for i, r in enumerate(doc.ranges()):
        if not r.covers(version):
            continue
        if r.series == series:
            return []
        changes.append(_carve(doc, i, r, version, releases))
        break
    ranges = doc.ranges()
    best: tuple[int, int, str] | None = None  # (gap size, index, "first"|"last")
    for i, r in enumerate(ranges):
        if r.series != series or r.apply != apply:
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
        changes.append(f"widened {old} to {widened.span}")
        return changes
    entry = TableEntry(series, version, version, apply)
    newest_first = len(ranges) > 1 and all(a.first > b.first for a, b in pairwise(ranges))
    if newest_first:  # keep a table written newest first that way
        at = next((i for i, r in enumerate(ranges) if r.first < version), len(ranges))
    else:
        at = next((i for i, r in enumerate(ranges) if r.first > version), len(ranges))
    doc.insert(at, entry)
    changes.append(f"added range {entry} (apply {apply})")
    return changes


def _carve(doc: TableDoc, index: int, r: TableEntry, version: Version,
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
        doc.insert(index + 1, TableEntry(r.series, above[0], r.last, r.apply))
    return f"took {version} out of range {r}"
