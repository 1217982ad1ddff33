"""SASL mechanisms as pluggable objects: PLAIN, XOAUTH2 (Google), OAUTHBEARER (RFC 7628).

A mechanism gets an `AuthContext` (how to send a challenge and read the answer, how to check
credentials) and the initial response (None when the client sent none) and returns an
`AuthResult`. `auth.authenticate` runs them for IMAP, POP3 and SMTP alike; the profile words
the outcome.

Like Dovecot, any answer to the error challenge ends in a plain failure. What the client
answered is judged all the same: `Transcript.violations` gets an entry when it was not what
RFC 7628 (`AQ==`, a lone %x01) or Google (an empty line) ask for, so a cell can assert it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from harness.mockserver.profiles import Outcome, Profile
from harness.mockserver.transcript import Transcript
from harness.mockserver.validators import Validation, Verdict

__all__ = ["MECHANISMS", "AuthContext", "AuthResult", "Outcome", "SaslAborted", "SaslBadBase64"]


@dataclass(frozen=True)
class AuthResult:
    outcome: Outcome
    user: str | None = None
    reason: str = ""


class SaslAborted(Exception):
    """The client answered a challenge with "*"."""


class SaslBadBase64(Exception):
    """The client's answer was not valid base64."""


class Conversation(Protocol):
    async def challenge(self, data: bytes) -> bytes:
        """Send the continuation with base64(data); the decoded answer (or SaslAborted /
        SaslBadBase64)."""
        ...


@dataclass
class AuthContext:
    conversation: Conversation
    validate_bearer: Callable[[str, str], Awaitable[Validation]]
    check_password: Callable[[str, str], bool]
    profile: Profile
    scope: str
    transcript: Transcript


class Mechanism(Protocol):
    name: str

    async def authenticate(self, ctx: AuthContext, initial: bytes | None) -> AuthResult: ...


async def _first(ctx: AuthContext, initial: bytes | None) -> bytes:
    return initial if initial is not None else await ctx.conversation.challenge(b"")


class PlainMechanism:
    name = "PLAIN"

    async def authenticate(self, ctx: AuthContext, initial: bytes | None) -> AuthResult:
        data = await _first(ctx, initial)
        parts = data.split(b"\0")
        if len(parts) != 3:
            return AuthResult(Outcome.FAILED, reason="malformed PLAIN response")
        authzid, authcid, password = (p.decode("utf-8", "replace") for p in parts)
        if authzid and authzid != authcid:
            return AuthResult(Outcome.FAILED, reason="authorization identity differs")
        if ctx.check_password(authcid, password):
            return AuthResult(Outcome.OK, authcid)
        return AuthResult(Outcome.FAILED, reason="bad password")


def _bearer(kvs: list[bytes]) -> str | None:
    for kv in kvs:
        key, sep, value = kv.partition(b"=")
        if sep and key.lower() == b"auth":
            scheme, _, token = value.decode("utf-8", "replace").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def parse_xoauth2(data: bytes) -> tuple[str, str] | None:
    """`user=U^Aauth=Bearer T^A^A` -> (U, T)."""
    if not data.endswith(b"\x01\x01"):
        return None
    fields = data[:-2].split(b"\x01")
    user = next((f[5:] for f in fields if f.startswith(b"user=")), None)
    token = _bearer(fields)
    if user is None or token is None:
        return None
    return user.decode("utf-8", "replace"), token


def _gs2_name(value: bytes) -> str | None:
    out = value.replace(b"=2C", b",").replace(b"=3D", b"=")
    if b"=" in value.replace(b"=2C", b"").replace(b"=3D", b""):
        return None
    return out.decode("utf-8", "replace")


def parse_oauthbearer(data: bytes) -> tuple[str, str] | None:
    """RFC 7628: `n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A` -> (U, T); U is "" for `n,,`."""
    gs2, sep, rest = data.partition(b"\x01")
    if not sep or not rest.endswith(b"\x01\x01"):
        return None
    header = gs2.split(b",")
    if len(header) != 3 or header[0] not in (b"n", b"y") or header[2] != b"":
        return None
    user = ""
    if header[1]:
        if not header[1].startswith(b"a="):
            return None
        name = _gs2_name(header[1][2:])
        if name is None:
            return None
        user = name
    token = _bearer(rest[:-2].split(b"\x01"))
    if token is None:
        return None
    return user, token


def _json(payload: dict[str, str]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class _BearerMechanism:
    name = ""
    expected_after_error = b""
    expected_shown = ""

    def parse(self, ctx: AuthContext, data: bytes) -> tuple[str, str] | None:
        raise NotImplementedError

    def error(self, ctx: AuthContext) -> dict[str, str]:
        raise NotImplementedError

    async def authenticate(self, ctx: AuthContext, initial: bytes | None) -> AuthResult:
        data = await _first(ctx, initial)
        parsed = self.parse(ctx, data)
        if parsed is None:  # dovecot: plain failure, no error challenge
            return AuthResult(Outcome.FAILED, None, f"malformed {self.name} response")
        user, token = parsed
        validation = await ctx.validate_bearer(user, token)
        if validation.verdict is Verdict.OK:
            return AuthResult(Outcome.OK, user)
        if validation.verdict is Verdict.UNAVAILABLE:
            return AuthResult(Outcome.UNAVAILABLE, user, validation.reason)
        if not ctx.profile.error_challenge:
            return AuthResult(Outcome.FAILED, user, validation.reason)
        answer = await ctx.conversation.challenge(_json(self.error(ctx)))
        if answer != self.expected_after_error:
            ctx.transcript.violation(
                f"{self.name} error challenge answered with {answer[:40]!r}, "
                f"not {self.expected_shown}"
            )
        return AuthResult(Outcome.FAILED, user, validation.reason)


class XOAuth2Mechanism(_BearerMechanism):
    name = "XOAUTH2"
    expected_after_error = b""  # Google: the client sends an empty line
    expected_shown = "an empty line"

    def parse(self, ctx: AuthContext, data: bytes) -> tuple[str, str] | None:
        return parse_xoauth2(data)

    def error(self, ctx: AuthContext) -> dict[str, str]:
        return ctx.profile.xoauth2_error(ctx.scope)


class OAuthBearerMechanism(_BearerMechanism):
    name = "OAUTHBEARER"
    expected_after_error = b"\x01"  # RFC 7628 3.2.3: the client answers %x01 ("AQ==")
    expected_shown = "AQ=="

    def parse(self, ctx: AuthContext, data: bytes) -> tuple[str, str] | None:
        parsed = parse_oauthbearer(data)
        if parsed is not None and not parsed[0] and ctx.profile.oauthbearer_needs_authzid:
            return None  # dovecot: no user to validate for, NO at once
        return parsed

    def error(self, ctx: AuthContext) -> dict[str, str]:
        return ctx.profile.oauthbearer_error(ctx.scope)


MECHANISMS: dict[str, Mechanism] = {
    m.name: m for m in (PlainMechanism(), XOAuth2Mechanism(), OAuthBearerMechanism())
}
