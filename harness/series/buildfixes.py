"""The build recipe's own patches (patches/build-fixes/): not OAuth, just what old releases need
to build with today's toolchains. Which release takes which is in build-fixes/fixes.toml."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.errors import ConfigError
from harness.series.table import Patch, Series, field, read_toml, tables, version_field
from harness.source.versions import Version

FIXES_DIR = "build-fixes"
FIXES_FILE = "fixes.toml"


@dataclass(frozen=True)
class BuildFix:
    patch: Patch
    first: Version
    last: Version
    with_series: bool  # only on top of an OAuth series

    def covers(self, version: Version) -> bool:
        return not version.branch and self.first <= version <= self.last


def load_fixes(patches_dir: Path | None = None) -> list[BuildFix]:
    directory = (patches_dir or paths.PATCHES_DIR) / FIXES_DIR
    file = directory / FIXES_FILE
    if not file.is_file():
        return []
    fixes = []
    for where, item in tables(read_toml(file), "fix", file,
                              frozenset({"patch", "first", "last", "with_series"})):
        name = field(item, "patch", str, where)
        path = directory / name
        if "/" in name or not path.is_file():
            raise ConfigError(f"{where}: no patch file {name} in {directory}")
        with_series = item.get("with_series", False)
        if not isinstance(with_series, bool):
            raise ConfigError(f"{where}: `with_series` must be true or false")
        first, last = version_field(item, "first", where), version_field(item, "last", where)
        if first > last:
            raise ConfigError(f"{where}: first {first} is after last {last}")
        fixes.append(BuildFix(Patch(name, path, name), first, last, with_series))
    return fixes


def fixes_for(version: Version, with_series: bool,
              patches_dir: Path | None = None) -> list[BuildFix]:
    """The fixes a build of `version` applies (after its series, when it has one)."""
    return [f for f in load_fixes(patches_dir)
            if f.covers(version) and (with_series or not f.with_series)]


def as_series(fixes: list[BuildFix], version: Version, directory: Path) -> Series:
    """The fixes as a series (for apply_series and its report)."""
    return Series(FIXES_DIR, directory, version, "build fixes",
                  tuple(f.patch for f in fixes))


def fixes_hash(fixes: list[BuildFix]) -> str:
    h = hashlib.sha256()
    for fix in fixes:
        h.update(fix.patch.name.encode() + b"\0" + fix.patch.path.read_bytes())
    return h.hexdigest()
