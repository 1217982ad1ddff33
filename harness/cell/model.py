"""A matrix cell: the identifier of one end-to-end run and what it stands for.

An identifier reads
``VERSION-SERIES-DISTRO[+SANITIZER|+deb]-PROTOCOL-MECHANISM-TRANSPORT[-daemon]``, e.g.
``6.4.33-oauth64-bookworm-imap-xoauth2-tls``,
``next-native-bookworm+asan-pop3-oauthbearer-starttls-daemon`` or
``6.4.33-oauth64-trixie+deb-pop3-xoauth2-tls`` (the fetchmail that the build's .deb installs
with apt, run from /usr/bin/fetchmail, instead of the build tree's binary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import ConfigError
from harness.source.versions import Version

PROTOCOLS = ("imap", "pop3")
MECHANISMS = ("xoauth2", "oauthbearer")
TRANSPORTS = ("tls", "starttls")  # tls = implicit TLS (IMAPS/POP3S), starttls = in-band upgrade
DISTROS = ("bookworm", "bullseye", "trixie")
SANITIZERS = ("asan",)
PACKAGED = "deb"  # DISTRO+deb: the cell runs the package's fetchmail
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
    packaged: bool = False

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
        if self.packaged and self.sanitizer is not None:
            raise ConfigError("a sanitizer build is not packaged: +deb and "
                              f"+{self.sanitizer} do not combine")
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
    def variant(self) -> str | None:
        """What follows the distro's '+': the sanitizer, or `deb`."""
        return PACKAGED if self.packaged else self.sanitizer

    @property
    def identifier(self) -> str:
        distro = f"{self.distro}+{self.variant}" if self.variant else self.distro
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
                "[+SANITIZER|+deb]-PROTOCOL-MECHANISM-TRANSPORT[-daemon], "
                "e.g. 6.4.33-oauth64-bookworm-imap-xoauth2-tls)"
            )
        version, series = parts[0], "-".join(parts[1:-4])
        distro, protocol, mechanism, transport = parts[-4:]
        distro, _, variant = distro.partition("+")
        packaged = variant == PACKAGED
        sanitizer = None if packaged else variant
        return cls(
            version=str(Version.parse(version)),
            series=series,
            distro=distro,
            protocol=protocol,
            mechanism=mechanism,
            transport=transport,
            sanitizer=sanitizer or None,
            daemon=daemon,
            packaged=packaged,
        )

    @property
    def unsupported(self) -> str | None:
        """Why this cell's release cannot build on its distro (see UNSUPPORTED), or None."""
        return UNSUPPORTED.get((self.version, self.distro))

    @property
    def build_group(self) -> str:
        """Cells with the same build group share one fetchmail build (a +deb cell uses the
        same build as its plain twin: its package is made from it)."""
        distro = f"{self.distro}+{self.sanitizer}" if self.sanitizer else self.distro
        return f"{self.version}-{self.series}-{distro}"

    @property
    def is_native(self) -> bool:
        return self.series == NATIVE_SERIES
