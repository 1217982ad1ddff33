"""Hostile-server behaviour, chosen per controller (`faults=`) or on the CLI (`--faults`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from harness.errors import ConfigError


@dataclass(frozen=True)
class Faults:
    """What the server does wrong. All off by default.

    delay: seconds slept before every line the server sends.
    disconnect_mid_fetch: send half of a FETCH/RETR/TOP body, then drop the connection.
    malformed: an untagged garbage line (NUL, 8-bit, unbalanced parens) before every reply.
    overlong: size in bytes of one overlong untagged line sent before every reply (0 = off).
    bad_base64: SASL challenges are not valid base64.
    endless_continuations: AUTHENTICATE/AUTH never completes: every client line gets another "+ ".
    early_disconnect: drop the connection right after the greeting.
    disconnect_after: drop the connection after this many commands (0 = off).
    validation_down: token validation is unreachable: every bearer login gets the profile's
        temporary failure, no error challenge (dovecot: IMAP `NO [UNAVAILABLE] Temporary
        authentication failure. [host:time]`, POP3 `-ERR [SYS/TEMP] ...`, SMTP `454 4.7.0 ...`).
    in_use: credentials are fine but the mailbox is locked by another session: IMAP
        `NO [INUSE] ...`, POP3 `-ERR [IN-USE] ...` (then the connection closes, as dovecot's
        pop3_lock_session does), SMTP `454 4.7.0 ...`.
    """

    delay: float = 0.0
    disconnect_mid_fetch: bool = False
    malformed: bool = False
    overlong: int = 0
    bad_base64: bool = False
    endless_continuations: bool = False
    early_disconnect: bool = False
    disconnect_after: int = 0
    validation_down: bool = False
    in_use: bool = False

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        """`"delay=0.1,disconnect-mid-fetch,overlong=200000"` -> Faults. Empty -> no faults."""
        if not spec:
            return cls()
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, raw = item.partition("=")
            key = name.strip().replace("-", "_")
            if key not in known:
                names = ", ".join(n.replace("_", "-") for n in known)
                raise ConfigError(f"unknown fault {name!r}; known: {names}")
            kind = known[key].type
            try:
                if kind in ("bool", bool):
                    values[key] = raw.lower() not in ("0", "no", "false", "off") if raw else True
                elif kind in ("int", int):
                    values[key] = int(raw) if raw else (1 << 20 if key == "overlong" else 1)
                else:
                    values[key] = float(raw) if raw else 0.1
            except ValueError:
                raise ConfigError(f"fault {name!r}: bad value {raw!r}") from None
        return cls(**values)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value and value is not False:
                name = f.name.replace("_", "-")
                parts.append(name if value is True else f"{name}={value}")
        return ",".join(parts) or "none"
