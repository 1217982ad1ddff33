"""Wording of real servers ("dovecot", "gmail", "microsoft"): greetings, capabilities, errors.

The dovecot profile is checked against Debian's dovecot 2.3 by tests/mockserver (side by side).
Gmail and Microsoft wording is from their documentation and observed sessions.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from harness.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    name: str
    imap_greeting: str
    imap_capabilities: tuple[str, ...]  # besides IMAP4rev1, STARTTLS, AUTH=..., LOGINDISABLED
    pop3_greeting: str
    pop3_capabilities: tuple[str, ...]  # besides USER, STLS, SASL ...
    mechanisms: tuple[str, ...]
    default_scope: str
    error_challenge: bool  # send the JSON error challenge on a bad bearer token
    xoauth2_status: str
    xoauth2_schemes: str
    oauthbearer_status: str
    imap_logged_in: str
    imap_auth_failed: str  # tagged NO text (incl. response code)
    imap_login_failed: str
    imap_unavailable: str
    imap_aborted: str  # tagged BAD text after "*"
    imap_bad_response: str  # tagged BAD text after a wrong answer to the error challenge
    pop3_logged_in: str
    pop3_auth_failed: str
    pop3_unavailable: str
    pop3_aborted: str
    pop3_bad_response: str
    capability_in_ok: bool = False  # "OK [CAPABILITY ...] Logged in" (dovecot)
    oauthbearer_status_only: bool = False  # dovecot sends just {"status":"invalid_token"}
    unavailable_stamp: bool = False  # dovecot appends " [host:YYYY-MM-DD HH:MM:SS]"
    imap_bad_base64: tuple[str, str] = ("BAD", "Invalid base64 data in response.")
    pop3_bad_base64: str = "Invalid base64 data in response."

    def xoauth2_error(self, scope: str) -> dict[str, str]:
        return {"status": self.xoauth2_status, "schemes": self.xoauth2_schemes, "scope": scope}

    def oauthbearer_error(self, scope: str) -> dict[str, str]:
        if self.oauthbearer_status_only:
            return {"status": self.oauthbearer_status}
        return {"status": self.oauthbearer_status, "schemes": self.xoauth2_schemes, "scope": scope}

    def unavailable(self, text: str) -> str:
        if not self.unavailable_stamp:
            return text
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        return f"{text} [{socket.gethostname()}:{stamp}]"


DOVECOT = Profile(
    name="dovecot",
    imap_greeting="Dovecot (Debian) ready.",
    imap_capabilities=("SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+"),
    pop3_greeting="Dovecot (Debian) ready.",
    pop3_capabilities=("TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"),
    mechanisms=("PLAIN", "XOAUTH2", "OAUTHBEARER"),
    default_scope="mail",
    error_challenge=True,
    xoauth2_status="401",
    xoauth2_schemes="bearer",
    oauthbearer_status="invalid_token",
    imap_logged_in="Logged in",
    imap_auth_failed="[AUTHENTICATIONFAILED] Authentication failed.",
    imap_login_failed="[AUTHENTICATIONFAILED] Authentication failed.",
    imap_unavailable="[UNAVAILABLE] Temporary authentication failure.",
    imap_aborted="Authentication aborted by client.",
    imap_bad_response="Authentication failed: unexpected response to the error challenge.",
    pop3_logged_in="Logged in.",
    pop3_auth_failed="[AUTH] Authentication failed.",
    pop3_unavailable="[SYS/TEMP] Temporary authentication failure.",
    pop3_aborted="Authentication aborted by client.",
    pop3_bad_response="Authentication failed: unexpected response to the error challenge.",
    capability_in_ok=True,
    oauthbearer_status_only=True,
    unavailable_stamp=True,
    imap_bad_base64=("NO", "[ALERT] Invalid base64 in response"),
    pop3_bad_base64="[AUTH] Invalid base64 data in continued response",
)

GMAIL = Profile(
    name="gmail",
    imap_greeting="Gimap ready for requests from 127.0.0.1 mock",
    imap_capabilities=(
        "UNSELECT",
        "IDLE",
        "NAMESPACE",
        "ID",
        "CHILDREN",
        "XYZZY",
        "SASL-IR",
    ),
    pop3_greeting="Gpop ready for requests from 127.0.0.1 mock",
    pop3_capabilities=("RESP-CODES", "EXPIRE 0", "LOGIN-DELAY 300", "TOP", "UIDL"),
    mechanisms=("XOAUTH2", "PLAIN", "OAUTHBEARER"),
    default_scope="https://mail.google.com/",
    error_challenge=True,
    xoauth2_status="400",
    xoauth2_schemes="Bearer",
    oauthbearer_status="invalid_token",
    imap_logged_in="user authenticated (Success)",
    imap_auth_failed="[AUTHENTICATIONFAILED] Invalid credentials (Failure)",
    imap_login_failed="[AUTHENTICATIONFAILED] Invalid credentials (Failure)",
    imap_unavailable="[UNAVAILABLE] Temporary System Error",
    imap_aborted="Authentication aborted (Failure)",
    imap_bad_response="Invalid SASL argument. (Failure)",
    pop3_logged_in="Welcome.",
    pop3_auth_failed="[AUTH] Username and password not accepted.",
    pop3_unavailable="[SYS/TEMP] Temporary system problem. Please try again later.",
    pop3_aborted="Authentication aborted.",
    pop3_bad_response="[AUTH] Invalid SASL argument.",
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
    mechanisms=("PLAIN", "XOAUTH2"),
    default_scope="https://outlook.office.com/IMAP.AccessAsUser.All",
    error_challenge=False,  # Exchange Online answers a bad token with a plain NO / -ERR
    xoauth2_status="401",
    xoauth2_schemes="Bearer",
    oauthbearer_status="invalid_token",
    imap_logged_in="AUTHENTICATE completed.",
    imap_auth_failed="AUTHENTICATE failed.",
    imap_login_failed="LOGIN failed.",
    imap_unavailable="Server Unavailable. 15",
    imap_aborted="Command Argument Error. 12",
    imap_bad_response="Command Argument Error. 12",
    pop3_logged_in="User successfully authenticated.",
    pop3_auth_failed="Authentication failure: unknown user name or bad password.",
    pop3_unavailable="Server Unavailable. 21",
    pop3_aborted="Command Argument Error. 12",
    pop3_bad_response="Command Argument Error. 12",
)

PROFILES = {p.name: p for p in (DOVECOT, GMAIL, MICROSOFT)}


def get_profile(profile: str | Profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ConfigError(
            f"unknown server profile {profile!r}; one of {', '.join(PROFILES)}"
        ) from None
