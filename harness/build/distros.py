"""The Debian releases fetchmail is built and run on: the one registry of distros."""

from __future__ import annotations

from typing import Literal, get_args

from harness.errors import ConfigError
from harness.source.versions import Version

# the current Debian (the default), the one before it (older gcc/OpenSSL), the next (newer)
Distro = Literal["bookworm", "bullseye", "trixie"]
DISTROS: tuple[Distro, ...] = get_args(Distro)
DEFAULT_DISTRO: Distro = "bookworm"

# (version, distro) pairs that cannot build for a reason outside this project: `matrix` skips
# their cells with the reason (so a full run can be green); `build` still tries and names it.
UNSUPPORTED: dict[tuple[Version, Distro], str] = {
    (Version.parse("next"), "bullseye"):
        "fetchmail 7 (`next`) needs Autoconf 2.71 or newer; bullseye has 2.69",
}


def check_distro(name: str) -> Distro:
    """`name` as a Distro; ConfigError naming the known ones otherwise."""
    if name not in DISTROS:
        raise ConfigError(f"unknown distro {name!r} (known: {', '.join(DISTROS)})")
    return name


def parse_distros(text: str) -> tuple[Distro, ...]:
    """A comma-separated list of distros (at least one), in the order given."""
    names = [d for d in text.split(",") if d]
    unknown = [d for d in names if d not in DISTROS]
    if unknown or not names:
        raise ConfigError(f"unknown distro(s) {', '.join(unknown) or '(none)'} "
                          f"(one of {', '.join(DISTROS)})")
    return tuple(check_distro(d) for d in names)
