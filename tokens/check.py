"""Try XOAUTH2/OAUTHBEARER authentication against an IMAP, POP3 or SMTP server, then use the
session (IMAP LIST, POP3 STAT, SMTP EHLO): Microsoft can accept a mismatched user at AUTH
and fail only at the next command ("User is authenticated but not connected")."""

from __future__ import annotations

import base64
import contextlib
import imaplib
import poplib
import smtplib
import ssl
import urllib.parse
from pathlib import Path
from typing import NamedTuple

from tokens.errors import CheckFailed, ConfigError
from tokens.sasl import encode, sasl_string
from tokens.urls import is_loopback

# scheme -> (protocol, default port, implicit TLS)
SCHEMES = {
    "imap": ("imap", 143, False),
    "imaps": ("imap", 993, True),
    "pop3": ("pop3", 110, False),
    "pop3s": ("pop3", 995, True),
    "smtp": ("smtp", 25, False),
    "submission": ("smtp", 587, False),
    "smtps": ("smtp", 465, True),
}


class Target(NamedTuple):
    protocol: str
    host: str
    port: int
    implicit_tls: bool


def parse_target(url: str) -> Target:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(
            f"check target {url!r} must look like SCHEME://host[:port], "
            f"SCHEME one of {', '.join(SCHEMES)}"
        )
    protocol, port, implicit = SCHEMES[parts.scheme]
    return Target(protocol, parts.hostname, parts.port or port, implicit)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _server_error(reply: bytes) -> str:
    """Decode a base64 JSON error challenge (XOAUTH2/OAUTHBEARER failure), if it is one."""
    try:
        return base64.b64decode(reply, validate=True).decode("utf-8")
    except ValueError:
        return reply.decode("utf-8", "replace")


def error_ack(mech: str) -> str:
    """What ends a failed exchange after the server's error challenge: %x01 for OAUTHBEARER
    (RFC 7628 section 3.2.3), an empty response for XOAUTH2."""
    return "\x01" if mech.upper() == "OAUTHBEARER" else ""


def check(
    url: str,
    user: str,
    token: str,
    *,
    mechanism: str = "xoauth2",
    ca_file: Path | None = None,
    plain: bool = False,
    timeout: float = 30.0,
) -> str:
    """Authenticate once; returns the server's success line, raises CheckFailed otherwise."""
    target = parse_target(url)
    if plain and not is_loopback(target.host):
        raise ConfigError("--plain (no TLS) is only allowed to loopback hosts: tokens are secrets")
    if plain and target.implicit_tls:
        raise ConfigError(f"--plain (no TLS) does not go with {url} (implicit TLS)")
    context = None if plain else tls_context(ca_file)
    raw = sasl_string(mechanism, user, token, target.host, target.port)
    mech = mechanism.upper()
    try:
        if target.protocol == "imap":
            return _imap(target, context, mech, raw, timeout)
        if target.protocol == "pop3":
            return _pop3(target, context, mech, raw, timeout)
        return _smtp(target, context, mech, raw, timeout)
    except (OSError, ssl.SSLError) as exc:
        raise CheckFailed(f"{url}: connection failed: {exc}") from None


def _imap(t: Target, ctx: ssl.SSLContext | None, mech: str, raw: str, timeout: float) -> str:
    if t.implicit_tls:
        assert ctx is not None
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(t.host, t.port, ssl_context=ctx, timeout=timeout)
    else:
        client = imaplib.IMAP4(t.host, t.port, timeout=timeout)
        if ctx is not None:
            client.starttls(ssl_context=ctx)
    try:
        answers = [raw.encode("utf-8")]  # then the error acknowledgement, never twice
        ack = error_ack(mech).encode()

        def respond(_challenge: bytes) -> bytes:
            return answers.pop() if answers else ack

        try:
            typ, data = client.authenticate(mech, respond)
        except imaplib.IMAP4.error as exc:
            raise CheckFailed(f"IMAP authentication failed: {exc}") from None
        text = " ".join(
            d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data
        )
        try:
            listed_typ, listed = client.list()
        except imaplib.IMAP4.error as exc:
            raise CheckFailed(f"IMAP authentication succeeded but LIST failed: {exc}") from None
        if listed_typ != "OK":
            said = b" ".join(x for x in listed if isinstance(x, bytes)).decode("utf-8", "replace")
            raise CheckFailed(f"IMAP authentication succeeded but LIST answered NO: {said}")
        return f"IMAP {typ} {text}; LIST {listed_typ}: {len(listed)} mailbox(es)"
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()


def _pop3_line(client: poplib.POP3, line: str) -> bytes:
    """Send one line, read one reply line (poplib has no AUTH with continuations)."""
    client.sock.sendall(line.encode("utf-8") + b"\r\n")
    reply = client.file.readline(8192)
    if not reply:
        raise poplib.error_proto("connection closed")
    return reply.rstrip(b"\r\n")


def _pop3(t: Target, ctx: ssl.SSLContext | None, mech: str, raw: str, timeout: float) -> str:
    if t.implicit_tls:
        client: poplib.POP3 = poplib.POP3_SSL(t.host, t.port, context=ctx, timeout=timeout)
    else:
        client = poplib.POP3(t.host, t.port, timeout=timeout)
        if ctx is not None:
            client.stls(context=ctx)
    try:
        reply = _pop3_line(client, f"AUTH {mech} {encode(raw)}")
        if reply.startswith(b"+ ") or reply == b"+":
            details = _server_error(reply[2:])
            ack = error_ack(mech)  # end the failed exchange; the server says -ERR
            reply = _pop3_line(client, encode(ack) if ack else "")
            raise CheckFailed(f"POP3 authentication failed: {reply.decode()} ({details})")
        if not reply.startswith(b"+OK"):
            raise CheckFailed(f"POP3 authentication failed: {reply.decode('utf-8', 'replace')}")
        stat = _pop3_line(client, "STAT").decode("utf-8", "replace")
        if not stat.startswith("+OK"):
            raise CheckFailed(f"POP3 authentication succeeded but STAT answered {stat}")
        return f"POP3 {reply.decode('utf-8', 'replace')}; STAT {stat}"
    except poplib.error_proto as exc:
        raise CheckFailed(f"POP3 authentication failed: {exc}") from None
    finally:
        with contextlib.suppress(poplib.error_proto, OSError):
            client.quit()


def _smtp(t: Target, ctx: ssl.SSLContext | None, mech: str, raw: str, timeout: float) -> str:
    if t.implicit_tls:
        client: smtplib.SMTP = smtplib.SMTP_SSL(t.host, t.port, context=ctx, timeout=timeout)
    else:
        client = smtplib.SMTP(t.host, t.port, timeout=timeout)
        if ctx is not None:
            client.starttls(context=ctx)
    try:
        try:
            client.ehlo()
            code, reply = client.auth(
                mech,
                lambda challenge=None: raw if challenge is None else error_ack(mech),
                initial_response_ok=True,
            )
        except smtplib.SMTPException as exc:
            raise CheckFailed(f"SMTP authentication failed: {exc}") from None
        try:
            ehlo_code, ehlo_reply = client.ehlo()
        except smtplib.SMTPException as exc:
            raise CheckFailed(f"SMTP authentication succeeded but EHLO failed: {exc}") from None
        if ehlo_code != 250:
            text = ehlo_reply.decode("utf-8", "replace")
            raise CheckFailed(f"SMTP authentication succeeded but EHLO answered {ehlo_code} {text}")
        return f"SMTP {code} {reply.decode('utf-8', 'replace')}; EHLO {ehlo_code}"
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
