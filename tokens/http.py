"""Form POSTs to the provider through one `requests.Session` (imported on first use).

No reply is trusted: no redirects are followed, a reply may be at most MAX_REPLY bytes, and
one request may take http_timeout_sec in all (connect, headers and body), not per read.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from tokens import __version__
from tokens.errors import ProviderUnavailable, TokenError
from tokens.urls import check_url, is_loopback

if TYPE_CHECKING:
    import requests

T = TypeVar("T")
MAX_RETRY_AFTER = 120.0
MAX_REPLY = 1 << 20  # 1 MiB: Microsoft's tokens are a few KB
RETRY_BUDGET = 60.0  # seconds of backoff a whole refresh may spend on top of its requests
_SESSION: list[requests.Session] = []


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


class Unusable(ProviderUnavailable):
    """Not worth retrying now: a redirect, an oversized reply, the deadline passed."""


class _DeadlineHit(BaseException):
    """Raised by SIGALRM inside a blocking read (BaseException: no library swallows it)."""


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Interrupt whatever blocks after `seconds` (main thread only; elsewhere the per-read
    timeouts and the check between chunks bound the request)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise _DeadlineHit

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def session() -> requests.Session:
    """The process's one Session (keep-alive across retries and accounts)."""
    if not _SESSION:
        import requests

        s = requests.Session()
        s.trust_env = False  # no ~/.netrc credentials sent to providers; proxies: see below
        s.headers.update(
            {"User-Agent": f"fetchmail-oauth2/{__version__}", "Accept": "application/json"}
        )
        _SESSION.append(s)
    return _SESSION[0]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _basic_header(basic: tuple[str, str]) -> str:
    # RFC 6749 2.3.1: form-urlencode id and secret, then base64 "id:secret"
    pair = ":".join(urllib.parse.quote_plus(part) for part in basic)
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _read_capped(reply: requests.Response, host: str, ends: float) -> bytes:
    declared = reply.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_REPLY:
        raise Unusable(f"{host} sent a {int(declared)}-byte reply (at most {MAX_REPLY} accepted)")
    body = bytearray()
    for chunk in reply.iter_content(65536):
        body += chunk
        if len(body) > MAX_REPLY:
            raise Unusable(f"{host} sent a reply over {MAX_REPLY} bytes; refused")
        if time.monotonic() > ends:
            raise _DeadlineHit
    return bytes(body)


def post_form(
    url: str,
    fields: Mapping[str, str],
    *,
    timeout: float,
    basic: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """POST `fields`; returns the JSON object, or raises OAuthErrorReply / Transient /
    Unusable. The whole request ends within `timeout` seconds."""
    check_url(url)
    import requests

    host = urllib.parse.urlsplit(url).hostname or ""
    # a local (mock) provider is never reached through a proxy from the environment
    proxies = {} if is_loopback(host) else requests.utils.get_environ_proxies(url)
    verify: str | bool = os.environ.get("REQUESTS_CA_BUNDLE") or True
    headers = {"Authorization": _basic_header(basic)} if basic else {}
    ends = time.monotonic() + timeout
    try:
        with (
            _alarm(timeout),
            session().post(
                url,
                data=dict(fields),
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
                proxies=proxies,
                verify=verify,
            ) as reply,
        ):
            status = reply.status_code
            if 300 <= status < 400:
                where = reply.headers.get("Location", "?")
                raise Unusable(
                    f"{host} answered HTTP {status} redirecting to {where}; redirects are "
                    "not followed (they would carry the request elsewhere): check the URL"
                )
            body = _read_capped(reply, host, ends)
            retry_after = reply.headers.get("Retry-After")
    except _DeadlineHit:
        raise Transient(f"{host} did not answer in full within {timeout:g} s") from None
    except requests.Timeout:
        raise Transient(f"{host} did not answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise Transient(f"cannot reach {host}: {type(exc).__name__}: {exc}") from None
    if status == 429 or status >= 500:
        raise Transient(f"{host} answered HTTP {status}", _retry_after(retry_after))
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise Transient(f"{host} answered HTTP {status} with a non-JSON body") from None
    if not isinstance(parsed, dict):
        raise Transient(f"{host} answered HTTP {status} with JSON that is not an object")
    if status >= 400 or "error" in parsed:
        error = parsed.get("error", f"http_{status}")
        description = parsed.get("error_description", "")
        raise OAuthErrorReply(oneline(error), oneline(description), status)
    return parsed


def oneline(value: object, limit: int = 300) -> str:
    """A provider's text made safe to print: one line, printable, bounded."""
    text = "".join(c if c.isprintable() else " " for c in str(value))
    return text[:limit] + ("..." if len(text) > limit else "")


def with_retries(
    call: Callable[[], T],
    *,
    retries: int,
    backoff: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying Transient failures `retries` times with doubling backoff; the
    whole run ends within (retries + 1) x timeout + RETRY_BUDGET seconds."""
    ends = time.monotonic() + (retries + 1) * timeout + RETRY_BUDGET
    delay = backoff
    for attempt in range(retries + 1):
        try:
            return call()
        except Transient as exc:
            wait = min(exc.retry_after if exc.retry_after is not None else delay, MAX_RETRY_AFTER)
            if attempt == retries or time.monotonic() + wait + timeout > ends:
                raise
            sleep(wait)
            delay = min(delay * 2, 60.0)
    raise AssertionError("unreachable")
