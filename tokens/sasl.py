"""SASL initial responses for XOAUTH2 (Google/Microsoft) and OAUTHBEARER (RFC 7628)."""

from __future__ import annotations

import base64

MECHANISMS = ("xoauth2", "oauthbearer")


def sasl_string(mechanism: str, user: str, token: str, host: str = "", port: int = 0) -> str:
    """The raw (not base64) initial client response."""
    if mechanism == "xoauth2":
        return f"user={user}\x01auth=Bearer {token}\x01\x01"
    if mechanism == "oauthbearer":
        extras = (f"host={host}\x01" if host else "") + (f"port={port}\x01" if port else "")
        return f"n,a={user},\x01{extras}auth=Bearer {token}\x01\x01"
    raise ValueError(f"unknown SASL mechanism {mechanism!r}; one of {', '.join(MECHANISMS)}")


def encode(raw: str) -> str:
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


def printable(raw: str) -> str:
    """Raw form with ^A shown as \\x01, for humans."""
    return raw.replace("\x01", "\\x01")
