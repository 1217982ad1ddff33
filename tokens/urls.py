"""URL policy for provider endpoints: https anywhere, plain http only to loopback."""

from __future__ import annotations

import ipaddress
import urllib.parse

from tokens.errors import ConfigError


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    """https anywhere; plain http only to loopback (a local mock provider)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    if parts.scheme == "http":
        raise ConfigError(
            f"refusing plain http:// to remote host {parts.hostname!r} ({url}): tokens would "
            "travel unencrypted; use https://"
        )
    raise ConfigError(f"not an https URL: {url!r}")
