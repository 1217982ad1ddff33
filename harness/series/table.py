"""Patch series: patches/series.toml (version -> series table) and patches/<series>/series.toml."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import paths
from harness.errors import ConfigError
from harness.series.names import is_series_name
from harness.source.versions import Version

TABLE_FILE = "series.toml"
QUILT_FILE = "series"  # the plain quilt series file beside series.toml
RESOLUTIONS_DIR = "resolutions"
FUZZ0, THREE_WAY = "fuzz0", "3way"
APPLY_METHODS = (FUZZ0, THREE_WAY)
_SUBJECT = re.compile(r"^Subject:\s*(?:\[PATCH[^\]]*\]\s*)?(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Patch:
    name: str
    path: Path
    subject: str


@dataclass(frozen=True)
class Series:
    name: str
    directory: Path
    base: Version
    description: str
    patches: tuple[Patch, ...]
    derived_from: str | None = None  # written by `series regenerate` from this series

    def content_hash(self) -> str:
        """sha256 over the series file and every patch, in order (part of build keys)."""
        h = hashlib.sha256((self.directory / TABLE_FILE).read_bytes())
        for patch in self.patches:
            h.update(patch.name.encode() + b"\0" + patch.path.read_bytes())
        return h.hexdigest()

    def patch_hashes(self) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.path.read_bytes()).hexdigest() for p in self.patches}

    @property
    def resolutions(self) -> Path:
        """Where the conflict resolutions recorded for carrying onto this line's releases live."""
        return self.directory / RESOLUTIONS_DIR


@dataclass(frozen=True)
class TableEntry:
    """One [[range]] of patches/series.toml: which series a run of releases takes, and how.

    apply = "fuzz0": the stored patches apply with `patch -p1 -F0`; "3way": the series is
    carried onto each release with git's three-way merge, recorded conflict resolutions
    replayed, giving a per-release variant that applies at fuzz 0 (harness/derive.py).
    """

    series: str
    first: Version
    last: Version
    apply: str = FUZZ0

    def covers(self, version: Version) -> bool:
        return self.first <= version <= self.last

    @property
    def span(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"

    def __str__(self) -> str:
        return f"{self.series} {self.span}"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"missing {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML in {path}: {exc}") from exc


def tables(data: Mapping[str, Any], key: str, file: Path,
           known: frozenset[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The `[[key]]` array of tables in `data` (read from `file`), each with the place to name
    in errors; ConfigError for a non-array, a non-table, or a key outside `known`."""
    items = data.get(key, [])
    if not isinstance(items, list):
        raise ConfigError(f"{file}: `{key}` must be an array of tables ([[{key}]])")
    found = []
    for i, item in enumerate(items, 1):
        where = f"{file} [[{key}]] #{i}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: not a table")
        unknown = sorted(set(item) - known) if known is not None else []
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
        found.append((where, item))
    return found


def field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}: missing `{key}`")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where}: `{key}` must be a {kind.__name__}, got {value!r}")
    return value


def version_field(data: Mapping[str, Any], key: str, where: str) -> Version:
    text = field(data, key, str, where)
    try:
        return Version.parse(text)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def parse_entry(data: Mapping[str, Any], where: str) -> TableEntry:
    """A [[range]] table as read by tomllib or tomlkit; ConfigError if anything is off."""
    if "max_fuzz" in data:
        raise ConfigError(f'{where}: `max_fuzz` is gone: write apply = "{FUZZ0}" (patch -p1 '
                          f'-F0) or apply = "{THREE_WAY}" (three-way merge, verified)')
    unknown = sorted(set(data) - {"series", "first", "last", "apply"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    apply = data.get("apply", FUZZ0)
    if apply not in APPLY_METHODS:
        raise ConfigError(f"{where}: `apply` must be one of {', '.join(APPLY_METHODS)}, "
                          f"got {apply!r}")
    entry = TableEntry(
        str(field(data, "series", str, where)),
        version_field(data, "first", where),
        version_field(data, "last", where),
        str(apply),
    )
    if entry.first > entry.last:
        raise ConfigError(f"{where}: first {entry.first} is after last {entry.last}")
    return entry


def check_disjoint(entries: list[TableEntry], where: str) -> None:
    for i, entry in enumerate(entries):
        for other in entries[:i]:
            if entry.first <= other.last and other.first <= entry.last:
                raise ConfigError(f"{where} [[range]] #{i + 1}: {entry.span} overlaps {other}")


def _subject(path: Path) -> str:
    head = path.read_text(errors="replace")[:4000]
    m = _SUBJECT.search(head)
    return m[1].strip() if m else path.stem


def load_series(name: str, patches_dir: Path | None = None) -> Series:
    """patches/<name>/series.toml with its patch files; ConfigError if anything is off."""
    root = patches_dir or paths.PATCHES_DIR
    directory = root / name
    if not is_series_name(name) or not (directory / TABLE_FILE).is_file():
        known = ", ".join(available_series(root)) or "none"
        raise ConfigError(f"unknown patch series {name!r} in {root} (known: {known})")
    return load_series_dir(directory)


def load_series_dir(directory: Path) -> Series:
    """The series in `directory` (named after it), wherever it lies."""
    name = directory.name
    file = directory / TABLE_FILE
    data = read_toml(file)
    where = str(file)
    if data.get("name", name) != name:
        raise ConfigError(f"{where}: name {data['name']!r} does not match its directory {name!r}")
    base = version_field(data, "base", where)
    description = data.get("description", "")
    derived_from = data.get("derived_from")
    if derived_from is not None and not isinstance(derived_from, str):
        raise ConfigError(f"{where}: `derived_from` must be a series name")
    names = field(data, "patches", list, where)
    patches = []
    for patch_name in names:
        if not isinstance(patch_name, str):
            raise ConfigError(f"{where}: patch names must be strings, got {patch_name!r}")
        path = directory / patch_name
        if not path.is_file():
            raise ConfigError(f"{where}: patch file {patch_name} is missing ({path})")
        patches.append(Patch(patch_name, path, _subject(path)))
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: a patch is listed twice")
    return Series(name, directory, base, str(description), tuple(patches), derived_from)


def available_series(patches_dir: Path | None = None) -> list[str]:
    root = patches_dir or paths.PATCHES_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / TABLE_FILE).is_file())


def quilt_series_text(series: Series) -> str:
    """The plain quilt `series` file: one patch per line, in order, -p1."""
    header = f"# {series.name}: generated from series.toml by fetchmail-harness; -p1\n"
    return header + "".join(f"{p.name}\n" for p in series.patches)


def load_table(patches_dir: Path | None = None) -> list[TableEntry]:
    """The [[range]] entries of patches/series.toml, checked: known series, no overlaps."""
    root = patches_dir or paths.PATCHES_DIR
    file = root / TABLE_FILE
    if not file.is_file():  # never "every release is uncovered": the install is broken
        raise ConfigError(f"missing {file}: the version -> series table (is the patch series "
                          "data installed? --patches-dir names another patches directory)")
    ranges = tables(read_toml(file), "range", file)
    if not ranges:
        raise ConfigError(f"{file} maps no release to a series (no [[range]] entry)")
    entries: list[TableEntry] = []
    for where, item in ranges:
        entry = parse_entry(item, where)
        if not (root / entry.series / TABLE_FILE).is_file():
            raise ConfigError(f"{where}: unknown series {entry.series!r} "
                              f"(no {root / entry.series / TABLE_FILE})")
        entries.append(entry)
    check_disjoint(entries, str(file))
    return entries


def entry_for(version: Version, patches_dir: Path | None = None) -> TableEntry | None:
    if version.branch:
        return None  # `next` has native OAuth
    return next((e for e in load_table(patches_dir) if e.covers(version)), None)


def series_for(
    version: Version, patches_dir: Path | None = None
) -> tuple[Series, TableEntry] | None:
    """The series (and its table entry) for `version`; None for `next` or an uncovered release."""
    entry = entry_for(version, patches_dir)
    if entry is None:
        return None
    return load_series(entry.series, patches_dir), entry


def describe_coverage(version: Version, patches_dir: Path | None = None) -> str:
    """'oauth64 (fuzz0)', 'native' (next) or 'uncovered', for listings."""
    if version.branch:
        return "native"
    entry = entry_for(version, patches_dir)
    return f"{entry.series} ({entry.apply})" if entry else "uncovered"


def markdown_table(patches_dir: Path | None = None) -> str:
    """The version→series table as Markdown rows (newest first), as the README shows it."""
    rows = []
    for entry in sorted(load_table(patches_dir), key=lambda e: e.first, reverse=True):
        span = str(entry.first) if entry.first == entry.last else f"{entry.first} to {entry.last}"
        series = load_series(entry.series, patches_dir)
        how = "fuzz 0" if entry.apply == FUZZ0 else "3-way merge"
        rows.append(f"| {span} | `{entry.series}` ({len(series.patches)} patches, "
                    f"made for {series.base}) | {how} |")
    return "\n".join(rows)
