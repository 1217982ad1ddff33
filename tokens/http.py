"""Form POSTs to the provider (stdlib urllib): https only, except http:// to loopback."""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from tokens import __version__
from tokens.errors import ConfigError, ProviderUnavailable, TokenError

T = TypeVar("T")
MAX_RETRY_AFTER = 120.0


class OAuthErrorReply(TokenError):
    """The provider answered with an RFC 6749 error (`error` is e.g. invalid_grant)."""

    def __init__(self, error: str, description: str, status: int) -> None:
        text = f"{error}: {description}" if description else error
        super().__init__(f"provider refused: {text} (HTTP {status})")
        self.error, self.description, self.status = error, description, status


class Transient(ProviderUnavailable):
    """Worth retrying: timeout, connection failure, 5xx, 429, unparseable reply."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def post_form(
    url: str,
    fields: Mapping[str, str],
    *,
    timeout: float,
    basic: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """POST `fields`; returns the JSON object, or raises OAuthErrorReply / Transient."""
    check_url(url)
    data = urllib.parse.urlencode(fields).encode("ascii")
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    request.add_header("Accept", "application/json")
    request.add_header("User-Agent", f"fetchmail-oauth2/{__version__}")
    if basic is not None:
        # RFC 6749 2.3.1: form-urlencode id and secret, then base64 "id:secret"
        pair = ":".join(urllib.parse.quote_plus(part) for part in basic)
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    host = urllib.parse.urlsplit(url).hostname or ""
    # a local (mock) provider is never reached through an http_proxy from the environment
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(host) else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as reply:
            body = reply.read()
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        body = exc.read() if exc.fp is not None else b""
        if status == 429 or status >= 500:
            raise Transient(
                f"{host} answered HTTP {status}", _retry_after(exc.headers.get("Retry-After"))
            ) from None
    except TimeoutError:
        raise Transient(f"{host} did not answer within {timeout:g} s") from None
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError | socket.timeout):
            raise Transient(f"{host} did not answer within {timeout:g} s") from None
        raise Transient(f"cannot reach {host}: {reason}") from None
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Transient(f"{host} answered HTTP {status} with a non-JSON body") from None
    if not isinstance(parsed, dict):
        raise Transient(f"{host} answered HTTP {status} with JSON that is not an object")
    if status >= 400 or "error" in parsed:
        raise OAuthErrorReply(
            str(parsed.get("error", f"http_{status}")),
            str(parsed.get("error_description", "")),
            status,
        )
    return parsed


def with_retries(
    call: Callable[[], T],
    *,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying Transient failures `retries` times with doubling backoff."""
    delay = backoff
    for attempt in range(retries + 1):
        try:
            return call()
        except Transient as exc:
            if attempt == retries:
                raise
            wait = exc.retry_after if exc.retry_after is not None else delay
            sleep(min(wait, MAX_RETRY_AFTER))
            delay = min(delay * 2, 60.0)
    raise AssertionError("unreachable")
