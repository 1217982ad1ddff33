"""Matrix cells: one identifier string per end-to-end run, and the selector over them.

An identifier reads ``VERSION-SERIES-DISTRO[+SANITIZER]-PROTOCOL-MECHANISM-TRANSPORT[-daemon]``,
e.g. ``6.4.33-oauth64-bookworm-imap-xoauth2-tls`` or
``next-native-bookworm+asan-pop3-oauthbearer-starttls-daemon``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.versions import Version

PROTOCOLS = ("imap", "pop3")
MECHANISMS = ("xoauth2", "oauthbearer")
TRANSPORTS = ("tls", "starttls")  # tls = implicit TLS (IMAPS/POP3S), starttls = in-band upgrade
DISTROS = ("bookworm", "bullseye", "trixie")
SANITIZERS = ("asan",)
NATIVE_SERIES = "native"  # fetchmail 7 (`next`): OAuth built in, no patch series
NATIVE_MECHANISMS = ("oauthbearer",)  # `next` knows `auth oauthbearer` only
DAEMON_SUFFIX = "daemon"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")  # a series name may contain '-' (oauth63-10)

# (version, distro) pairs that cannot build for a reason outside this project: `matrix` skips
# their cells with the reason (so a full run can be green); `build` still tries and names it.
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("next", "bullseye"): "fetchmail 7 (`next`) needs Autoconf 2.71 or newer; bullseye has 2.69",
}


@dataclass(frozen=True, order=True)
class Cell:
    """Everything one end-to-end run needs to know, resolved from its identifier."""

    version: str
    series: str
    distro: str
    protocol: str
    mechanism: str
    transport: str
    sanitizer: str | None = None
    daemon: bool = False

    def __post_init__(self) -> None:
        Version.parse(self.version)  # raises ConfigError on nonsense
        for field, value, allowed in (
            ("protocol", self.protocol, PROTOCOLS),
            ("mechanism", self.mechanism, MECHANISMS),
            ("transport", self.transport, TRANSPORTS),
            ("distro", self.distro, DISTROS),
        ):
            if value not in allowed:
                raise ConfigError(
                    f"unknown {field} {value!r} (one of: {', '.join(allowed)})"
                )
        if self.sanitizer is not None and self.sanitizer not in SANITIZERS:
            raise ConfigError(
                f"unknown sanitizer {self.sanitizer!r} (one of: {', '.join(SANITIZERS)})"
            )
        if not _NAME.match(self.series):
            raise ConfigError(
                f"bad series name {self.series!r} (lowercase letters, digits, _ . and -)"
            )
        if self.series == NATIVE_SERIES and self.mechanism not in NATIVE_MECHANISMS:
            raise ConfigError(
                f"{self.version} (native OAuth) supports only "
                f"{', '.join(NATIVE_MECHANISMS)}, not {self.mechanism}"
            )

    @property
    def identifier(self) -> str:
        distro = f"{self.distro}+{self.sanitizer}" if self.sanitizer else self.distro
        parts = [self.version, self.series, distro, self.protocol, self.mechanism, self.transport]
        if self.daemon:
            parts.append(DAEMON_SUFFIX)
        return "-".join(parts)

    def __str__(self) -> str:
        return self.identifier

    @classmethod
    def parse(cls, identifier: str) -> Cell:
        """Fields are split at '-': the version has none, the last 4 (or 5 with -daemon) are
        fixed, so whatever lies between is the series (which may contain '-')."""
        parts = identifier.strip().split("-")
        daemon = parts[-1] == DAEMON_SUFFIX
        if daemon:
            parts = parts[:-1]
        if len(parts) < 6:
            raise ConfigError(
                f"not a cell identifier: {identifier!r} (expected VERSION-SERIES-DISTRO"
                "[+SANITIZER]-PROTOCOL-MECHANISM-TRANSPORT[-daemon], "
                "e.g. 6.4.33-oauth64-bookworm-imap-xoauth2-tls)"
            )
        version, series = parts[0], "-".join(parts[1:-4])
        distro, protocol, mechanism, transport = parts[-4:]
        distro, _, sanitizer = distro.partition("+")
        return cls(
            version=str(Version.parse(version)),
            series=series,
            distro=distro,
            protocol=protocol,
            mechanism=mechanism,
            transport=transport,
            sanitizer=sanitizer or None,
            daemon=daemon,
        )

    @property
    def unsupported(self) -> str | None:
        """Why this cell's release cannot build on its distro (see UNSUPPORTED), or None."""
        return UNSUPPORTED.get((self.version, self.distro))

    @property
    def build_group(self) -> str:
        """Cells with the same build group share one fetchmail binary."""
        distro = f"{self.distro}+{self.sanitizer}" if self.sanitizer else self.distro
        return f"{self.version}-{self.series}-{distro}"

    @property
    def is_native(self) -> bool:
        return self.series == NATIVE_SERIES


SeriesOf = Callable[[Version], str | None]


def generate(
    versions: Iterable[Version],
    series_of: SeriesOf,
    *,
    distros: Sequence[str] = DISTROS,
    sanitizers: Sequence[str] = (),
    daemon: bool = True,
) -> list[Cell]:
    """Every cell for versions x series x distros x protocols x mechanisms x transports.

    `series_of(version)` names the patch series for a release (None: no series, no cells);
    `next` is always native. Each build group also gets one daemon (token rotation) cell per
    protocol, and with `sanitizers` the same cells again on a sanitizer build.
    """
    cells: list[Cell] = []
    for version in sorted(set(versions)):
        series = NATIVE_SERIES if version.branch else series_of(version)
        if series is None:
            continue
        mechanisms = NATIVE_MECHANISMS if series == NATIVE_SERIES else MECHANISMS
        for distro in distros:
            for sanitizer in (None, *sanitizers):
                for protocol in PROTOCOLS:
                    for mechanism in mechanisms:
                        for transport in TRANSPORTS:
                            cells.append(
                                Cell(str(version), series, distro, protocol, mechanism,
                                     transport, sanitizer)
                            )
                    if daemon:
                        cells.append(
                            Cell(str(version), series, distro, protocol, mechanisms[-1],
                                 "tls", sanitizer, daemon=True)
                        )
    return cells


def group_by_build(cells: Iterable[Cell]) -> dict[str, list[Cell]]:
    """Cells keyed by build group, in first-seen order: one build serves each list."""
    groups: dict[str, list[Cell]] = {}
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

    def mentions_sanitizer(self) -> bool:
        return any("+" in pat for pat in self.include)

    def select(self, cells: Sequence[Cell]) -> list[Cell]:
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
    from harness.series import series_for

    def of(version: Version) -> str | None:
        found = series_for(version, patches_dir)
        return found[0].name if found else None

    return of


def cells_for(
    versions: Iterable[Version],
    *,
    patches_dir: Path | None = None,
    distros: Sequence[str] = DISTROS,
    sanitizers: Sequence[str] = (),
) -> list[Cell]:
    """The full matrix for `versions` under the project's series table."""
    return generate(versions, series_name_of(patches_dir), distros=distros, sanitizers=sanitizers)
