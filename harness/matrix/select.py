"""The matrix's cells: generated from a version list and the series table, grouped, selected."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.build.distros import DISTROS, Distro
from harness.cell.kinds import MatrixCell
from harness.cell.model import (
    DEFAULT_SERVER,
    MECHANISMS,
    NATIVE_MECHANISMS,
    PROTOCOLS,
    TRANSPORTS,
    Cell,
    Mechanism,
    Sanitizer,
    Server,
)
from harness.errors import ConfigError
from harness.series.names import NATIVE_SERIES
from harness.source.versions import Version

SeriesOf = Callable[[Version], str | None]
C = TypeVar("C", bound=MatrixCell)


def generate(
    versions: Iterable[Version],
    series_of: SeriesOf,
    *,
    distros: Sequence[Distro] = DISTROS,
    sanitizers: Sequence[Sanitizer] = (),
    packaged: bool = False,
    daemon: bool = True,
    long_token: bool = True,
    servers: Sequence[Server] = (DEFAULT_SERVER,),
) -> list[Cell]:
    """Every cell for versions x series x distros x protocols x mechanisms x transports x
    servers.

    `series_of(version)` names the patch series for a release (None: no series, no cells);
    `next` is always native. Each build group also gets one daemon (token rotation) cell per
    protocol and one long-token cell (IMAP, implicit TLS), and with `sanitizers` the same
    cells again on a sanitizer build, with `packaged` again from the build's installed .deb
    (DISTRO+deb). The servers' cells of one build group are adjacent.
    """
    variants: list[tuple[Sanitizer | None, bool]] = [(None, False)]
    variants += [(s, False) for s in sanitizers]
    if packaged:
        variants.append((None, True))
    cells: list[Cell] = []
    for version in sorted(set(versions)):
        series = NATIVE_SERIES if version.branch else series_of(version)
        if series is None:
            continue
        mechanisms = NATIVE_MECHANISMS if series == NATIVE_SERIES else MECHANISMS
        for distro in distros:
            for sanitizer, deb in variants:
                for server in servers:
                    cells += _group_cells(version, series, distro, sanitizer, deb, server,
                                          mechanisms, daemon, long_token)
    return cells


def _group_cells(version: Version, series: str, distro: Distro, sanitizer: Sanitizer | None,
                 deb: bool, server: Server, mechanisms: Sequence[Mechanism], daemon: bool,
                 long_token: bool) -> list[Cell]:
    cells = []
    for protocol in PROTOCOLS:
        for mechanism in mechanisms:
            for transport in TRANSPORTS:
                cells.append(Cell(version, series, distro, protocol, mechanism, transport,
                                  sanitizer, packaged=deb, server=server))
        if daemon:
            cells.append(Cell(version, series, distro, protocol, mechanisms[-1], "tls",
                              sanitizer, daemon=True, packaged=deb, server=server))
    if long_token:
        cells.append(Cell(version, series, distro, "imap", mechanisms[0], "tls", sanitizer,
                          long_token=True, packaged=deb, server=server))
    return cells


def group_by_build(cells: Iterable[C]) -> dict[str, list[C]]:
    """Cells keyed by build group, in first-seen order: one build serves each list."""
    groups: dict[str, list[C]] = {}
    for cell in cells:
        groups.setdefault(cell.build_group, []).append(cell)
    return groups


@dataclass(frozen=True)
class Selector:
    """Comma-separated fnmatch globs over identifiers; `!glob` excludes (applied last).

    With no positive glob everything not excluded is selected. Each positive glob must
    match some cell, so a typo is an error rather than a silently smaller matrix.
    """

    include: tuple[str, ...]
    exclude: tuple[str, ...]

    @classmethod
    def parse(cls, text: str | Sequence[str] | None) -> Selector:
        if text is None:
            chunks: list[str] = []
        elif isinstance(text, str):
            chunks = [text]
        else:
            chunks = list(text)
        include: list[str] = []
        exclude: list[str] = []
        for chunk in chunks:
            for raw in re.split(r"[,\s]+", chunk):
                if not raw:
                    continue
                if raw.startswith("!"):
                    if len(raw) == 1:
                        raise ConfigError("empty negation '!' in selector")
                    exclude.append(raw[1:])
                else:
                    include.append(raw)
        return cls(tuple(include), tuple(exclude))

    def matches(self, identifier: str) -> bool:
        if any(fnmatch.fnmatchcase(identifier, pat) for pat in self.exclude):
            return False
        return not self.include or any(
            fnmatch.fnmatchcase(identifier, pat) for pat in self.include
        )

    def mentions(self, variant: str) -> bool:
        """Whether a positive glob can match DISTRO+`variant` ('*+asan-*', '*+*', '*+d*')."""
        return any(
            fnmatch.fnmatchcase(variant, pat.split("+", 1)[1].split("-", 1)[0] or "*")
            for pat in self.include if "+" in pat
        )

    def select(self, cells: Sequence[C]) -> list[C]:
        ids = [c.identifier for c in cells]
        unmatched = [p for p in self.include if not fnmatch.filter(ids, p)]
        if unmatched:
            raise ConfigError(
                f"selector pattern(s) match no cell: {', '.join(unmatched)}"
                + _examples(ids)
            )
        chosen = [c for c in cells if self.matches(c.identifier)]
        if not chosen:
            raise ConfigError(
                f"selector {self} leaves no cell to run" + _examples(ids)
            )
        return chosen

    def __str__(self) -> str:
        return ",".join([*self.include, *(f"!{p}" for p in self.exclude)]) or "*"


def _examples(ids: Sequence[str]) -> str:
    if not ids:
        return " (there are no cells at all: is the version list or series table empty?)"
    shown = ", ".join(ids[:3])
    return f" (identifiers look like: {shown}; list them with `fetchmail-harness matrix --list`)"


def series_name_of(patches_dir: Path | None = None) -> SeriesOf:
    """series_of for `generate`, backed by the patches/series.toml table."""
    from harness.series.table import series_for

    def of(version: Version) -> str | None:
        found = series_for(version, patches_dir)
        return found[0].name if found else None

    return of


def cells_for(
    versions: Iterable[Version],
    *,
    patches_dir: Path | None = None,
    distros: Sequence[Distro] = DISTROS,
    sanitizers: Sequence[Sanitizer] = (),
    packaged: bool = False,
    servers: Sequence[Server] = (DEFAULT_SERVER,),
) -> list[Cell]:
    """The full matrix for `versions` under the project's series table."""
    return generate(versions, series_name_of(patches_dir), distros=distros,
                    sanitizers=sanitizers, packaged=packaged, servers=servers)
