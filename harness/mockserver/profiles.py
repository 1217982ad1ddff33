"""How a real server words things: greetings, capabilities, limits, and its authentication
replies, one table per protocol (`Profile.replies[protocol][outcome]`).

Profiles (`--profile NAME`, `MailServerController(profile=NAME)`):
- `dovecot`: Debian's Dovecot 2.3 with the oauth2 passdb (imap-login, pop3-login,
  submission-login); tests/mockserver/test_dovecot_side_by_side.py checks it against the real
  one, limits included (a SASL response of 8192 bytes or more drops the connection).
- `dovecot-xoauth2`: the same Dovecot configured with `auth_mechanisms = xoauth2`: it offers
  only `AUTH=XOAUTH2` (IMAP), `SASL XOAUTH2` (POP3), `AUTH XOAUTH2` (SMTP), as Microsoft 365
  does among bearer mechanisms; for clients that must fall back from OAUTHBEARER.
- `gmail`, `microsoft`: wording from their documentation and observed sessions (Microsoft 365
  offers PLAIN and XOAUTH2, no OAUTHBEARER, and sends no error challenge).
"""

from __future__ import annotations

import dataclasses
import enum
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import ConfigError


class Outcome(enum.Enum):
    """How one authentication ended; each profile words each outcome per protocol."""

    OK = "ok"
    FAILED = "failed"  # bad token, bad password, malformed mechanism data
    UNAVAILABLE = "unavailable"  # token validation down: temporary, no error challenge
    IN_USE = "in-use"  # credentials fine, the mailbox is locked by another session
    ABORTED = "aborted"  # the client answered a challenge with "*"
    BAD_BASE64 = "bad-base64"  # a continuation line that is not base64
    BAD_INITIAL = "bad-initial"  # an initial response that is not base64
    UNSUPPORTED = "unsupported"  # a mechanism the server does not offer


Replies = Mapping[Outcome, str]  # the whole reply after the IMAP tag / as the POP3, SMTP line


@dataclass(frozen=True)
class Profile:
    name: str
    imap_greeting: str
    imap_capabilities: tuple[str, ...]  # besides IMAP4rev1, STARTTLS, AUTH=..., LOGINDISABLED
    pop3_greeting: str
    pop3_capabilities: tuple[str, ...]  # besides STLS, USER, SASL ...
    smtp_greeting: str  # after "220 "
    smtp_extensions: tuple[str, ...]  # EHLO keywords in order; "AUTH", "STARTTLS" when usable
    mechanisms: tuple[str, ...]
    default_scope: str
    error_challenge: bool  # send the JSON error challenge on a bad bearer token
    xoauth2_status: str
    xoauth2_schemes: str
    oauthbearer_status: str
    replies: Mapping[str, Replies]  # protocol -> outcome -> reply
    imap_logged_in: str
    imap_login_failed: str
    pop3_logged_in: str
    smtp_logged_in: str
    capability_in_ok: bool = False  # "OK [CAPABILITY ...] Logged in" (dovecot)
    oauthbearer_status_only: bool = False  # dovecot sends just {"status":"invalid_token"}
    oauthbearer_needs_authzid: bool = False  # dovecot: `n,,` fails at once, no challenge
    unavailable_stamp: bool = False  # dovecot appends " [host:YYYY-MM-DD HH:MM:SS]"
    pop3_user_always: bool = False  # dovecot: CAPA lists USER, USER says +OK, PASS then fails
    # A SASL response (initial or continuation, base64) this long or longer drops the
    # connection without a reply (dovecot: LOGIN_MAX_AUTH_BUF_SIZE 8192 with the CR). 0 = none.
    sasl_response_limit: int = 0
    smtp_param_limit: int = 0  # SMTP: bytes after the verb (AUTH's mechanism and initial
    # response included); over it, `smtp_line_too_long` (dovecot submission-login: 1024)
    smtp_sasl_limit: int = 0  # SMTP: one AUTH continuation line (dovecot: 8192)
    smtp_line_too_long: str = "500 5.5.2 Line too long"

    def reply(self, protocol: str, outcome: Outcome) -> str:
        text = self.replies[protocol][outcome]
        if outcome is Outcome.UNAVAILABLE and self.unavailable_stamp:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            text += f" [{socket.gethostname()}:{stamp}]"
        return text

    def xoauth2_error(self, scope: str) -> dict[str, str]:
        return {"status": self.xoauth2_status, "schemes": self.xoauth2_schemes, "scope": scope}

    def oauthbearer_error(self, scope: str) -> dict[str, str]:
        if self.oauthbearer_status_only:
            return {"status": self.oauthbearer_status}
        return {"status": self.oauthbearer_status, "schemes": self.xoauth2_schemes, "scope": scope}


DOVECOT_REPLIES: dict[str, Replies] = {
    "imap": {
        Outcome.FAILED: "NO [AUTHENTICATIONFAILED] Authentication failed.",
        Outcome.UNAVAILABLE: "NO [UNAVAILABLE] Temporary authentication failure.",
        Outcome.IN_USE: "NO [INUSE] Mailbox is locked by another session.",  # RFC 5530 code
        Outcome.ABORTED: "BAD Authentication aborted by client.",
        Outcome.BAD_BASE64: "NO [ALERT] Invalid base64 in response",
        Outcome.BAD_INITIAL: "BAD Invalid base64 data in initial response",
        Outcome.UNSUPPORTED: "NO [ALERT] Unsupported authentication mechanism.",
    },
    "pop3": {
        Outcome.FAILED: "-ERR [AUTH] Authentication failed.",
        Outcome.UNAVAILABLE: "-ERR [SYS/TEMP] Temporary authentication failure.",
        Outcome.IN_USE: "-ERR [IN-USE] Mailbox is locked by another POP3 session.",
        Outcome.ABORTED: "-ERR Authentication aborted by client.",
        Outcome.BAD_BASE64: "-ERR [AUTH] Invalid base64 in response",
        Outcome.BAD_INITIAL: "-ERR [AUTH] Invalid base64 data in initial response",
        Outcome.UNSUPPORTED: "-ERR [AUTH] Unsupported authentication mechanism.",
    },
    "smtp": {
        Outcome.FAILED: "535 5.7.8 Authentication failed.",
        Outcome.UNAVAILABLE: "454 4.7.0 Temporary authentication failure.",
        Outcome.IN_USE: "454 4.7.0 Temporary authentication failure.",
        Outcome.ABORTED: "501 5.5.2 Authentication aborted by client.",
        Outcome.BAD_BASE64: "535 5.7.8 Invalid base64 in response",
        Outcome.BAD_INITIAL: "501 5.5.2 Invalid base64 data in initial response",
        Outcome.UNSUPPORTED: "504 5.5.4 Unsupported authentication mechanism.",
    },
}

DOVECOT = Profile(
    name="dovecot",
    imap_greeting="Dovecot (Debian) ready.",
    imap_capabilities=("SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+"),
    pop3_greeting="Dovecot (Debian) ready.",
    pop3_capabilities=("CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"),
    smtp_greeting="{host} Dovecot (Debian) ready.",
    smtp_extensions=(
        "8BITMIME",
        "AUTH",
        "BURL imap",
        "CHUNKING",
        "ENHANCEDSTATUSCODES",
        "SIZE",
        "STARTTLS",
        "PIPELINING",
    ),
    mechanisms=("PLAIN", "XOAUTH2", "OAUTHBEARER"),
    default_scope="mail",
    error_challenge=True,
    xoauth2_status="401",
    xoauth2_schemes="bearer",
    oauthbearer_status="invalid_token",
    replies=DOVECOT_REPLIES,
    imap_logged_in="Logged in",
    imap_login_failed="[AUTHENTICATIONFAILED] Authentication failed.",
    pop3_logged_in="Logged in.",
    smtp_logged_in="235 2.7.0 Logged in.",
    capability_in_ok=True,
    oauthbearer_status_only=True,
    oauthbearer_needs_authzid=True,
    unavailable_stamp=True,
    pop3_user_always=True,
    sasl_response_limit=8192 - 1,
    smtp_param_limit=1024,
    smtp_sasl_limit=8192,
)

DOVECOT_XOAUTH2 = dataclasses.replace(DOVECOT, name="dovecot-xoauth2", mechanisms=("XOAUTH2",))

GMAIL = Profile(
    name="gmail",
    imap_greeting="Gimap ready for requests from 127.0.0.1 mock",
    imap_capabilities=("UNSELECT", "IDLE", "NAMESPACE", "ID", "CHILDREN", "XYZZY", "SASL-IR"),
    pop3_greeting="Gpop ready for requests from 127.0.0.1 mock",
    pop3_capabilities=("RESP-CODES", "EXPIRE 0", "LOGIN-DELAY 300", "TOP", "UIDL"),
    smtp_greeting="smtp.gmail.com ESMTP mock - gsmtp",
    smtp_extensions=(
        "SIZE 35882577",
        "8BITMIME",
        "STARTTLS",
        "AUTH",
        "ENHANCEDSTATUSCODES",
        "PIPELINING",
        "CHUNKING",
        "SMTPUTF8",
    ),
    mechanisms=("XOAUTH2", "PLAIN", "OAUTHBEARER"),
    default_scope="https://mail.google.com/",
    error_challenge=True,
    xoauth2_status="400",
    xoauth2_schemes="Bearer",
    oauthbearer_status="invalid_token",
    replies={
        "imap": {
            Outcome.FAILED: "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
            Outcome.UNAVAILABLE: "NO [UNAVAILABLE] Temporary System Error",
            Outcome.IN_USE: "NO [INUSE] Mailbox in use (Failure)",
            Outcome.ABORTED: "BAD Authentication aborted (Failure)",
            Outcome.BAD_BASE64: "BAD Invalid SASL argument. (Failure)",
            Outcome.BAD_INITIAL: "BAD Invalid SASL argument. (Failure)",
            Outcome.UNSUPPORTED: "BAD Unsupported AUTHENTICATE mechanism. (Failure)",
        },
        "pop3": {
            Outcome.FAILED: "-ERR [AUTH] Username and password not accepted.",
            Outcome.UNAVAILABLE: "-ERR [SYS/TEMP] Temporary system problem. Try again later.",
            Outcome.IN_USE: "-ERR [IN-USE] Mailbox in use.",
            Outcome.ABORTED: "-ERR Authentication aborted.",
            Outcome.BAD_BASE64: "-ERR [AUTH] Invalid SASL argument.",
            Outcome.BAD_INITIAL: "-ERR [AUTH] Invalid SASL argument.",
            Outcome.UNSUPPORTED: "-ERR [AUTH] Unsupported authentication mechanism.",
        },
        "smtp": {
            Outcome.FAILED: "535 5.7.8 Username and Password not accepted. mock - gsmtp",
            Outcome.UNAVAILABLE: "454 4.7.0 Try again later, closing connection. mock - gsmtp",
            Outcome.IN_USE: "454 4.7.0 Try again later, closing connection. mock - gsmtp",
            Outcome.ABORTED: "501 5.5.2 Cannot Decode response mock - gsmtp",
            Outcome.BAD_BASE64: "501 5.5.2 Cannot Decode response mock - gsmtp",
            Outcome.BAD_INITIAL: "501 5.5.2 Cannot Decode response mock - gsmtp",
            Outcome.UNSUPPORTED: "504 5.7.4 Unrecognized authentication type. mock - gsmtp",
        },
    },
    imap_logged_in="user authenticated (Success)",
    imap_login_failed="[AUTHENTICATIONFAILED] Invalid credentials (Failure)",
    pop3_logged_in="Welcome.",
    smtp_logged_in="235 2.7.0 Accepted",
)

MICROSOFT = Profile(
    name="microsoft",
    imap_greeting="The Microsoft Exchange IMAP4 service is ready. [TU9DSy1NT0NL]",
    imap_capabilities=(
        "IMAP4",
        "SASL-IR",
        "ID",
        "UNSELECT",
        "CHILDREN",
        "IDLE",
        "NAMESPACE",
        "LITERAL+",
    ),
    pop3_greeting="The Microsoft Exchange POP3 service is ready. [TU9DSy1NT0NL]",
    pop3_capabilities=("TOP", "UIDL"),
    smtp_greeting="MOCK.outlook.office365.com Microsoft ESMTP MAIL Service ready",
    smtp_extensions=(
        "SIZE 157286400",
        "PIPELINING",
        "DSN",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "AUTH",
        "8BITMIME",
        "BINARYMIME",
        "CHUNKING",
        "SMTPUTF8",
    ),
    mechanisms=("PLAIN", "XOAUTH2"),
    default_scope="https://outlook.office.com/IMAP.AccessAsUser.All",
    error_challenge=False,  # Exchange Online answers a bad token with a plain NO / -ERR
    xoauth2_status="401",
    xoauth2_schemes="Bearer",
    oauthbearer_status="invalid_token",
    replies={
        "imap": {
            Outcome.FAILED: "NO AUTHENTICATE failed.",
            Outcome.UNAVAILABLE: "NO Server Unavailable. 15",
            Outcome.IN_USE: "NO [INUSE] Mailbox in use.",
            Outcome.ABORTED: "BAD Command Argument Error. 12",
            Outcome.BAD_BASE64: "BAD Command Argument Error. 12",
            Outcome.BAD_INITIAL: "BAD Command Argument Error. 12",
            Outcome.UNSUPPORTED: "BAD Command Argument Error. 12",
        },
        "pop3": {
            Outcome.FAILED: "-ERR Authentication failure: unknown user name or bad password.",
            Outcome.UNAVAILABLE: "-ERR Server Unavailable. 21",
            Outcome.IN_USE: "-ERR [IN-USE] Mailbox in use.",
            Outcome.ABORTED: "-ERR Command Argument Error. 12",
            Outcome.BAD_BASE64: "-ERR Command Argument Error. 12",
            Outcome.BAD_INITIAL: "-ERR Command Argument Error. 12",
            Outcome.UNSUPPORTED: "-ERR Command Argument Error. 12",
        },
        "smtp": {
            Outcome.FAILED: "535 5.7.3 Authentication unsuccessful",
            Outcome.UNAVAILABLE: "454 4.7.0 Temporary authentication failure",
            Outcome.IN_USE: "454 4.7.0 Temporary authentication failure",
            Outcome.ABORTED: "501 5.5.2 Authentication aborted",
            Outcome.BAD_BASE64: "501 5.5.2 Cannot decode response",
            Outcome.BAD_INITIAL: "501 5.5.2 Cannot decode response",
            Outcome.UNSUPPORTED: "504 5.7.4 Unrecognized authentication type",
        },
    },
    imap_logged_in="AUTHENTICATE completed.",
    imap_login_failed="LOGIN failed.",
    pop3_logged_in="User successfully authenticated.",
    smtp_logged_in="235 2.7.0 Authentication successful",
)

PROFILES: dict[str, Profile] = {
    p.name: p for p in (DOVECOT, DOVECOT_XOAUTH2, GMAIL, MICROSOFT)
}


def get_profile(profile: str | Profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ConfigError(
            f"unknown server profile {profile!r}; one of {', '.join(PROFILES)}"
        ) from None
