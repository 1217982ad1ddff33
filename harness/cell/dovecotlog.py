"""What Dovecot's own log says about a cell's logins (auth_debug + auth_debug_passwords).

Dovecot answers any client reply to the SASL error challenge with `NO [AUTHENTICATIONFAILED]`,
so its replies cannot show whether fetchmail answered correctly; its auth process logs every
exchange instead:

    auth: Debug: client in: AUTH\t1\tOAUTHBEARER\tservice=imap\t...\tresp=<base64>
    auth: Debug: client passdb out: CONT\t1\t<base64 {"status":"invalid_token"...}>
    auth: Debug: client in: CONT\t1\tAQ== (previous base64 data may contain sensitive data)
    auth: Debug: client passdb out: FAIL\t1\tuser=user@example.com
    auth: Debug: client passdb out: FAIL\t1\tuser=user@example.com\tcode=temp_fail
    imap-login: Info: Login: user=<user@example.com>, method=OAUTHBEARER, ...
    imap-login: Info: Authenticate PLAIN failed: Unsupported authentication mechanism.: ...
    imap-login: Info: Disconnected: Authentication response too large (...)
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

_CLIENT_AUTH = re.compile(r"auth: Debug: client in: AUTH\t(\d+)\t([A-Z0-9-]+)\t")
_CLIENT_CONT = re.compile(r"auth: Debug: client in: CONT\t(\d+)\t([^\s]*)")
_SERVER_OUT = re.compile(r"auth: Debug: client passdb out: (CONT|OK|FAIL)\t(\d+)\t?([^\t\s]*)")
TEMP_FAIL = "\tcode=temp_fail"  # a FAIL that is no refusal: the passdb could not answer
_LOGIN = re.compile(r"(?:imap|pop3)-login: Info: Login: .*?method=([A-Z0-9-]+)")
_REFUSED_MECH = re.compile(r"(?:imap|pop3)-login: Info: .*?method=([A-Z0-9-]+)")
BEARER = ("XOAUTH2", "OAUTHBEARER")
TOO_LARGE = "Authentication response too large"


@dataclass
class Attempt:
    """One SASL exchange as the auth process saw it."""

    mechanism: str
    error_challenge: dict[str, object] | None = None  # the JSON the server sent on failure
    answer: str | None = None  # the client's reply to that challenge (base64, "" = empty)
    outcome: str = ""  # OK / FAIL / TEMPFAIL (could not check) / "" (the connection went away)


@dataclass
class DovecotLog:
    attempts: list[Attempt] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)  # mechanisms of successful logins
    other_methods: list[str] = field(default_factory=list)  # non-bearer methods tried
    too_large: int = 0  # SASL responses over 8192 bytes Dovecot dropped

    @property
    def refused(self) -> int:
        return sum(a.outcome == "FAIL" for a in self.attempts)

    @property
    def temporary_failures(self) -> int:
        return sum(a.outcome == "TEMPFAIL" for a in self.attempts)


def _json_challenge(data: str) -> dict[str, object] | None:
    try:
        decoded = json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


def parse(text: str) -> DovecotLog:
    parsed = DovecotLog()
    open_attempts: dict[str, Attempt] = {}  # auth request id -> its attempt
    for line in text.splitlines():
        if m := _CLIENT_AUTH.search(line):
            attempt = Attempt(m[2])
            parsed.attempts.append(attempt)
            open_attempts[m[1]] = attempt
        elif m := _SERVER_OUT.search(line):
            attempt_or_none = open_attempts.get(m[2])
            if attempt_or_none is None:
                continue
            if m[1] == "CONT":
                attempt_or_none.error_challenge = _json_challenge(m[3]) if m[3] else None
            else:
                temporary = m[1] == "FAIL" and TEMP_FAIL in line
                attempt_or_none.outcome = "TEMPFAIL" if temporary else m[1]
                del open_attempts[m[2]]
        elif m := _CLIENT_CONT.search(line):
            attempt_or_none = open_attempts.get(m[1])
            if attempt_or_none is not None and attempt_or_none.error_challenge is not None:
                attempt_or_none.answer = m[2]
        elif m := _LOGIN.search(line):
            parsed.logins.append(m[1])
        elif TOO_LARGE in line:
            parsed.too_large += 1
        elif (m := _REFUSED_MECH.search(line)) and m[1] not in BEARER:
            parsed.other_methods.append(m[1])
    return parsed


def wrong_answers(log: DovecotLog) -> list[str]:
    """Replies to an error challenge other than RFC 7628's %x01 (OAUTHBEARER) or the empty
    line Google documents for XOAUTH2."""
    wanted = {"OAUTHBEARER": base64.b64encode(b"\x01").decode(), "XOAUTH2": ""}
    return [f"{a.mechanism} answered {a.answer!r}, not {wanted[a.mechanism]!r}"
            for a in log.attempts
            if a.error_challenge is not None and a.answer is not None
            and a.mechanism in wanted and a.answer != wanted[a.mechanism]]


def non_auth_lines(text: str) -> str:
    """The log without the auth process's debug lines (which carry the tokens by design)."""
    return "\n".join(ln for ln in text.splitlines() if "auth: Debug:" not in ln)
