"""Upstream's security advisories: releases that must not be used to send bearer tokens.

Listed as [[advisory]] in patches/series.toml. `versions`, `build` and `run` warn about an
affected release, and `build` makes one for use only with --allow-insecure-release; the
matrix still tests them (with a note), since the series cover them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.series.table import TABLE_FILE, field, read_toml, tables, version_field
from harness.source.versions import Version

ALLOW_FLAG = "--allow-insecure-release"


@dataclass(frozen=True)
class Advisory:
    id: str  # fetchmail-SA-YYYY-NN
    cve: str
    last_affected: Version
    summary: str
    url: str

    def affects(self, version: Version) -> bool:
        return not version.branch and version <= self.last_affected

    def label(self) -> str:
        return f"{self.id} ({self.cve})"


def load_advisories(patches_dir: Path | None = None) -> list[Advisory]:
    file = (patches_dir or paths.PATCHES_DIR) / TABLE_FILE
    found = []
    for where, item in tables(read_toml(file), "advisory", file,
                              frozenset({"id", "cve", "last_affected", "summary", "url"})):
        found.append(Advisory(field(item, "id", str, where), field(item, "cve", str, where),
                              version_field(item, "last_affected", where),
                              field(item, "summary", str, where), field(item, "url", str, where)))
    return found


def advisories_for(version: Version, patches_dir: Path | None = None) -> list[Advisory]:
    return [a for a in load_advisories(patches_dir) if a.affects(version)]


def short_note(found: list[Advisory]) -> str:
    """'INSECURE: SA-2021-02 (CVE-2021-39272), ...' for listings; '' when none."""
    return "INSECURE: " + ", ".join(a.label() for a in found) if found else ""


def warning(version: Version, found: list[Advisory]) -> str:
    """The loud, multi-line warning for a release with known security holes."""
    lines = [f"WARNING: fetchmail {version} has known security holes; do not use it to send "
             "bearer tokens (or passwords):"]
    lines += [f"  - {a.label()}, releases up to {a.last_affected}: {a.summary} ({a.url})"
              for a in found]
    lines.append(f"  Use a release after {max(a.last_affected for a in found)}"
                 " for real mail.")
    return "\n".join(lines)
