"""A matrix cell: the identifier of one end-to-end run and what it stands for.

An identifier reads
``VERSION-SERIES-DISTRO[+SANITIZER|+deb]-PROTOCOL-MECHANISM-TRANSPORT[-daemon|-longtoken|-tempfail][-SERVER]``,
e.g. ``6.4.33-oauth64-bookworm-imap-xoauth2-tls``,
``next-native-bookworm+asan-pop3-oauthbearer-starttls-daemon``,
``6.4.33-oauth64-trixie+deb-pop3-xoauth2-tls`` (the fetchmail that the build's .deb installs
with apt, run from /usr/bin/fetchmail, instead of the build tree's binary) or
``6.4.33-oauth64-bookworm-imap-xoauth2-tls-dovecot`` (against Debian's Dovecot 2.3 instead of
the project's mock). Its first three fields are the build group, the identifier of the
BuildSpec (`Cell.build`) whose binary the cell runs (a +deb cell shares the build of its
plain twin: its package is made from it).

A new axis (such as the mail server a cell talks to) is a typed field with a default, spelled
in the identifier only when it is not the default (as `-daemon` is), so existing identifiers
and result-cache keys stay what they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

from harness.build.builder import SANITIZER, BuildSpec
from harness.build.distros import DISTROS, UNSUPPORTED, Distro
from harness.errors import ConfigError
from harness.series.names import NATIVE_SERIES, SERIES_NAME_RULE, is_series_name
from harness.source.versions import Version

Protocol = Literal["imap", "pop3"]
Mechanism = Literal["xoauth2", "oauthbearer"]
Transport = Literal["tls", "starttls"]  # tls = implicit TLS (IMAPS/POP3S), starttls = upgrade
Sanitizer = Literal["asan"]  # ASan + UBSan
TlsMode = Literal["implicit", "starttls"]  # what the mock servers call a transport

PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
MECHANISMS: tuple[Mechanism, ...] = get_args(Mechanism)
TRANSPORTS: tuple[Transport, ...] = get_args(Transport)
SANITIZERS: tuple[Sanitizer, ...] = get_args(Sanitizer)
TLS_MODES: dict[Transport, TlsMode] = {"tls": "implicit", "starttls": "starttls"}
NATIVE_MECHANISMS: tuple[Mechanism, ...] = ("oauthbearer",)  # `next` knows only this one
PACKAGED = "deb"  # DISTRO+deb: the cell runs the package's fetchmail
DAEMON_SUFFIX = "daemon"
LONG_TOKEN_SUFFIX = "longtoken"  # a token whose SASL response exceeds 8192 bytes
TEMP_FAILURE_SUFFIX = "tempfail"  # the server cannot validate tokens for now (introspection 503)
Server = Literal["mock", "dovecot"]  # the project's mock, or Debian's Dovecot 2.3
SERVERS: tuple[Server, ...] = get_args(Server)
DEFAULT_SERVER: Server = "mock"
L = TypeVar("L", bound=str)
assert SANITIZERS == (SANITIZER,)  # the build stage builds exactly this one


def one_of(kind: str, value: str, allowed: tuple[L, ...]) -> L:
    """`value` as one of the `allowed` literals; ConfigError naming them otherwise."""
    for candidate in allowed:
        if candidate == value:
            return candidate
    raise ConfigError(f"unknown {kind} {value!r} (one of: {', '.join(allowed)})")


@dataclass(frozen=True, order=True)
class Cell:
    """Everything one end-to-end run needs to know, resolved from its identifier."""

    version: Version
    series: str  # a series name, or NATIVE_SERIES for `next`
    distro: Distro
    protocol: Protocol
    mechanism: Mechanism
    transport: Transport
    sanitizer: Sanitizer | None = None
    daemon: bool = False
    packaged: bool = False
    long_token: bool = False
    server: Server = DEFAULT_SERVER
    temp_failure: bool = False

    def __post_init__(self) -> None:
        # the Literal types hold for cells made in code; identifiers come from users
        one_of("protocol", self.protocol, PROTOCOLS)
        one_of("mechanism", self.mechanism, MECHANISMS)
        one_of("transport", self.transport, TRANSPORTS)
        one_of("distro", self.distro, DISTROS)
        one_of("server", self.server, SERVERS)
        if self.daemon + self.long_token + self.temp_failure > 1:
            raise ConfigError("a cell is at most one of a daemon, a long-token and a "
                              "temporary-failure cell")
        if self.sanitizer is not None:
            one_of("sanitizer", self.sanitizer, SANITIZERS)
            if self.packaged:
                raise ConfigError("a sanitizer build is not packaged: +deb and "
                                  f"+{self.sanitizer} do not combine")
        if not is_series_name(self.series):
            raise ConfigError(f"bad series name {self.series!r} ({SERIES_NAME_RULE})")
        if self.is_native and self.mechanism not in NATIVE_MECHANISMS:
            raise ConfigError(
                f"{self.version} (native OAuth) supports only "
                f"{', '.join(NATIVE_MECHANISMS)}, not {self.mechanism}"
            )

    @property
    def build(self) -> BuildSpec:
        """The build whose binary this cell runs (its identifier is the cell's build group)."""
        return BuildSpec(self.version, self.distro, None if self.is_native else self.series,
                         sanitize=self.sanitizer is not None)

    @property
    def build_group(self) -> str:
        """Cells with the same build group share one fetchmail binary."""
        return self.build.identifier

    @property
    def variant(self) -> str | None:
        """What follows the distro's '+': the sanitizer, or `deb`."""
        return PACKAGED if self.packaged else self.sanitizer

    @property
    def identifier(self) -> str:
        group = f"{self.build_group}+{PACKAGED}" if self.packaged else self.build_group
        parts = [group, self.protocol, self.mechanism, self.transport]
        if self.daemon:
            parts.append(DAEMON_SUFFIX)
        if self.long_token:
            parts.append(LONG_TOKEN_SUFFIX)
        if self.temp_failure:
            parts.append(TEMP_FAILURE_SUFFIX)
        if self.server != DEFAULT_SERVER:
            parts.append(self.server)
        return "-".join(parts)

    def __str__(self) -> str:
        return self.identifier

    @classmethod
    def parse(cls, identifier: str) -> Cell:
        """Fields are split at '-': the version has none, the last 4 (after the optional
        -daemon/-longtoken/-tempfail and -SERVER) are fixed, so whatever lies between is the series
        (which may contain '-')."""
        parts = identifier.strip().split("-")
        server: Server = DEFAULT_SERVER
        if parts[-1] != DEFAULT_SERVER and parts[-1] in SERVERS:
            server = one_of("server", parts.pop(), SERVERS)
        daemon = parts[-1] == DAEMON_SUFFIX
        long_token = parts[-1] == LONG_TOKEN_SUFFIX
        temp_failure = parts[-1] == TEMP_FAILURE_SUFFIX
        if daemon or long_token or temp_failure:
            parts = parts[:-1]
        if len(parts) < 6:
            raise ConfigError(
                f"not a cell identifier: {identifier!r} (expected VERSION-SERIES-DISTRO"
                "[+SANITIZER|+deb]-PROTOCOL-MECHANISM-TRANSPORT[-daemon|-longtoken|-tempfail]"
                "[-dovecot], "
                "e.g. 6.4.33-oauth64-bookworm-imap-xoauth2-tls)"
            )
        version, series = parts[0], "-".join(parts[1:-4])
        distro, protocol, mechanism, transport = parts[-4:]
        distro, _, variant = distro.partition("+")
        packaged = variant == PACKAGED
        sanitizer = "" if packaged else variant
        protocol_ = one_of("protocol", protocol, PROTOCOLS)  # in this order: a stray last
        mechanism_ = one_of("mechanism", mechanism, MECHANISMS)  # field shows as a bad protocol
        transport_ = one_of("transport", transport, TRANSPORTS)
        return cls(
            version=Version.parse(version),
            series=series,
            distro=one_of("distro", distro, DISTROS),
            protocol=protocol_,
            mechanism=mechanism_,
            transport=transport_,
            sanitizer=one_of("sanitizer", sanitizer, SANITIZERS) if sanitizer else None,
            daemon=daemon,
            packaged=packaged,
            long_token=long_token,
            server=server,
            temp_failure=temp_failure,
        )

    @property
    def unsupported(self) -> str | None:
        """Why this cell's release cannot build on its distro (see UNSUPPORTED), or None."""
        return UNSUPPORTED.get((self.version, self.distro))

    @property
    def is_native(self) -> bool:
        return self.series == NATIVE_SERIES

    @property
    def tls_mode(self) -> TlsMode:
        return TLS_MODES[self.transport]
