"""Patch series: patches/series.toml (version -> series table) and patches/<series>/series.toml."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import paths
from harness.errors import ConfigError
from harness.series.names import is_series_name
from harness.source.versions import Version

TABLE_FILE = "series.toml"
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

    def content_hash(self) -> str:
        """sha256 over the series file and every patch, in order (part of build keys)."""
        h = hashlib.sha256((self.directory / TABLE_FILE).read_bytes())
        for patch in self.patches:
            h.update(patch.name.encode() + b"\0" + patch.path.read_bytes())
        return h.hexdigest()

    def patch_hashes(self) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.path.read_bytes()).hexdigest() for p in self.patches}


@dataclass(frozen=True)
class TableEntry:
    series: str
    first: Version
    last: Version
    max_fuzz: int

    def covers(self, version: Version) -> bool:
        return self.first <= version <= self.last


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"missing {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML in {path}: {exc}") from exc


def _field(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}: missing `{key}`")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where}: `{key}` must be a {kind.__name__}, got {value!r}")
    return value


def _version(text: str, where: str) -> Version:
    try:
        return Version.parse(text)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _subject(path: Path) -> str:
    head = path.read_text(errors="replace")[:4000]
    m = _SUBJECT.search(head)
    return m[1].strip() if m else path.stem


def load_series(name: str, patches_dir: Path | None = None) -> Series:
    """patches/<name>/series.toml with its patch files; ConfigError if anything is off."""
    root = patches_dir or paths.PATCHES_DIR
    directory = root / name
    if not is_series_name(name) or not directory.is_dir():
        known = ", ".join(available_series(root)) or "none"
        raise ConfigError(f"unknown patch series {name!r} in {root} (known: {known})")
    file = directory / TABLE_FILE
    data = _read_toml(file)
    where = str(file)
    if data.get("name", name) != name:
        raise ConfigError(f"{where}: name {data['name']!r} does not match its directory {name!r}")
    base = _version(_field(data, "base", str, where), where)
    description = data.get("description", "")
    names = _field(data, "patches", list, where)
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
    return Series(name, directory, base, str(description), tuple(patches))


def available_series(patches_dir: Path | None = None) -> list[str]:
    root = patches_dir or paths.PATCHES_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / TABLE_FILE).is_file())


def load_table(patches_dir: Path | None = None) -> list[TableEntry]:
    """The [[range]] entries of patches/series.toml, checked: known series, no overlaps."""
    root = patches_dir or paths.PATCHES_DIR
    file = root / TABLE_FILE
    if not file.is_file():  # never "every release is uncovered": the install is broken
        raise ConfigError(f"missing {file}: the version -> series table (is the patch series "
                          "data installed? --patches-dir names another patches directory)")
    data = _read_toml(file)
    ranges = data.get("range", [])
    if not isinstance(ranges, list):
        raise ConfigError(f"{file}: `range` must be an array of tables ([[range]])")
    if not ranges:
        raise ConfigError(f"{file} maps no release to a series (no [[range]] entry)")
    entries: list[TableEntry] = []
    for i, item in enumerate(ranges, 1):
        where = f"{file} [[range]] #{i}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: not a table")
        name = _field(item, "series", str, where)
        first = _version(_field(item, "first", str, where), where)
        last = _version(_field(item, "last", str, where), where)
        max_fuzz = item.get("max_fuzz", 0)
        if not isinstance(max_fuzz, int) or isinstance(max_fuzz, bool) or max_fuzz < 0:
            raise ConfigError(f"{where}: `max_fuzz` must be an integer >= 0, got {max_fuzz!r}")
        if first > last:
            raise ConfigError(f"{where}: first {first} is after last {last}")
        if not (root / name / TABLE_FILE).is_file():
            raise ConfigError(f"{where}: unknown series {name!r} (no {root / name / TABLE_FILE})")
        entry = TableEntry(name, first, last, max_fuzz)
        for other in entries:
            if entry.first <= other.last and other.first <= entry.last:
                raise ConfigError(
                    f"{where}: {first}..{last} overlaps {other.series} "
                    f"({other.first}..{other.last})"
                )
        entries.append(entry)
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
    """'oauth64', 'native' (next) or 'uncovered', for listings."""
    if version.branch:
        return "native"
    entry = entry_for(version, patches_dir)
    return entry.series if entry else "uncovered"


def markdown_table(patches_dir: Path | None = None) -> str:
    """The version→series table as Markdown rows (newest first), as the README shows it."""
    rows = []
    for entry in sorted(load_table(patches_dir), key=lambda e: e.first, reverse=True):
        span = str(entry.first) if entry.first == entry.last else f"{entry.first} to {entry.last}"
        series = load_series(entry.series, patches_dir)
        rows.append(f"| {span} | `{entry.series}` ({len(series.patches)} patches, "
                    f"made for {series.base}) | {entry.max_fuzz} |")
    return "\n".join(rows)
