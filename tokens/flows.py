"""The first refresh token: authorization code + PKCE (loopback or pasted URL), device code."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import os
import secrets
import select
import socket
import sys
import threading
import time
import urllib.parse
import webbrowser
from collections.abc import Callable
from typing import Any, TextIO

from tokens.config import Config
from tokens.errors import AuthFlowError, ConfigError
from tokens.http import OAuthErrorReply, Transient
from tokens.refresh import client_fields, lock, provider_post, store_grant, token_request
from tokens.state import Phase, TokenState, read_sidecar, save_phase, write_sidecar
from tokens.urls import check_url, is_loopback

MS_NATIVE_REDIRECT = "https://login.microsoftonline.com/common/oauth2/nativeclient"
MAX_REQUEST = 65536


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(cfg: Config, redirect_uri: str, state: str, challenge: str) -> str:
    params = {
        "client_id": cfg.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": cfg.scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **cfg.auth_params,
    }
    if cfg.user:
        params["login_hint"] = cfg.user
    sep = "&" if "?" in cfg.auth_url else "?"
    return cfg.auth_url + sep + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def _can_open_browser() -> bool:
    """Only graphical browsers: a console browser would take over the terminal."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def show_url(url: str, out: TextIO, browser: bool) -> None:
    print("Open this URL in a browser and grant access:", file=out)
    print(url, file=out, flush=True)
    if browser and _can_open_browser():
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()


def parse_redirect(text: str, expected_state: str) -> str:
    """The code from a redirected URL (or its query); checks state. Accepts approvalCode."""
    text = text.strip()
    parts = urllib.parse.urlsplit(text)
    query = parts.query or parts.fragment
    if not query and "=" in text and "://" not in text:
        query = text.lstrip("?")
    params = dict(urllib.parse.parse_qsl(query))
    if "error" in params:
        description = params.get("error_description", "")
        raise AuthFlowError(f"the provider refused authorisation: {params['error']} {description}")
    code = params.get("code") or params.get("approvalCode")
    if not code:
        raise AuthFlowError("no `code` (or `approvalCode`) parameter in what was pasted/received")
    state = params.get("state")
    if state is None or not secrets.compare_digest(state, expected_state):
        raise AuthFlowError("state mismatch: this redirect does not belong to this request")
    return code


def refuse_oob(cfg: Config) -> None:
    """The out-of-band redirect (the classic script's default) no longer works anywhere."""
    uri = (cfg.redirect_uri or "").lower()
    if uri == "oob" or uri.startswith("urn:ietf:wg:oauth:2.0:oob"):
        raise ConfigError(
            f"{cfg.path}: redirect_uri {cfg.redirect_uri} is the out-of-band redirect; "
            "Google removed it in 2022: delete the redirect_uri line "
            "(the loopback flow listens on http://127.0.0.1), or set e.g. "
            "redirect_uri = http://localhost:8080/ (registered with the provider) and use "
            "--flow loopback, or --flow manual on a machine without a browser"
        )


def _loopback_redirect(cfg: Config) -> tuple[str, int, str]:
    """(host, port, path) from redirect_uri; port 0 when it names none (any free port will do,
    RFC 8252 section 7.3); the path as written ("" and "/" both match a request for /)."""
    if not cfg.redirect_uri:
        return ("localhost" if cfg.provider == "microsoft" else "127.0.0.1"), 0, "/"
    parts = urllib.parse.urlsplit(cfg.redirect_uri)
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        try:
            port = parts.port or 0
        except ValueError:
            raise ConfigError(f"{cfg.path}: redirect_uri {cfg.redirect_uri}: bad port") from None
        return parts.hostname, port, parts.path
    raise ConfigError(
        f"{cfg.path}: the loopback flow needs redirect_uri on http://127.0.0.1, http://[::1] or "
        f"http://localhost (any port and path), not {cfg.redirect_uri}; use --flow manual "
        "to paste the redirected URL instead"
    )


def _read_request(conn: socket.socket, deadline: float) -> str:
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < MAX_REQUEST:
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1").split("\n", 1)[0].strip()


def _reply(conn: socket.socket, status: str, text: str) -> None:
    body = f"<!doctype html><title>fetchmail-oauth2</title><p>{text}</p>\n".encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        conn.sendall(head.encode() + body)


def loopback_code(
    cfg: Config, state: str, challenge: str, out: TextIO, browser: bool, timeout: float
) -> tuple[str, str]:
    """Listen on redirect_uri's loopback port (or any free one), show the URL, serve exactly
    one authorization response."""
    host, fixed_port, path = _loopback_redirect(cfg)
    listen_host = "127.0.0.1" if host == "localhost" else host.strip("[]")
    family = socket.AF_INET6 if ":" in listen_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((listen_host, fixed_port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {listen_host} port {fixed_port} (redirect_uri in {cfg.path}): "
                f"{exc.strerror}; free the port or choose another (registered) one"
            ) from None
        listener.listen(8)
        port = listener.getsockname()[1]
        shown_host = f"[{listen_host}]" if family == socket.AF_INET6 else host
        # a fixed port: exactly the registered URI; otherwise the port we were given
        redirect_uri = cfg.redirect_uri if fixed_port else f"http://{shown_host}:{port}{path}"
        assert redirect_uri is not None
        show_url(authorization_url(cfg, redirect_uri, state, challenge), out, browser)
        print(f"Waiting for the browser on {redirect_uri} ...", file=out, flush=True)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([listener], [], [], left)[0]:
                raise AuthFlowError(f"no browser redirect within {timeout:g} s")
            conn, _ = listener.accept()
            with conn:
                try:
                    line = _read_request(conn, deadline)
                except OSError:
                    continue
                method, _, rest = line.partition(" ")
                target = rest.rsplit(" ", 1)[0]
                if method != "GET" or urllib.parse.urlsplit(target).path != (path or "/"):
                    _reply(conn, "404 Not Found", "Not the authorization redirect.")
                    continue  # e.g. /favicon.ico: keep waiting for the real one
                try:
                    code = parse_redirect(target, state)
                except AuthFlowError as exc:
                    _reply(conn, "400 Bad Request", f"Authorization failed: {exc}")
                    raise
                _reply(conn, "200 OK", "Authorization received; you may close this window.")
                return code, redirect_uri


def manual_code(
    cfg: Config, state: str, challenge: str, out: TextIO, read_line: Callable[[], str]
) -> tuple[str, str]:
    """Headless: show the URL, read the URL the browser ended on (pasted)."""
    default = MS_NATIVE_REDIRECT if cfg.provider == "microsoft" else "http://localhost/"
    redirect_uri = cfg.redirect_uri or default
    show_url(authorization_url(cfg, redirect_uri, state, challenge), out, browser=False)
    print(
        "After granting access the browser is redirected (the page may fail to load).\n"
        "Paste the full URL from its address bar here:",
        file=out,
        flush=True,
    )
    line = read_line()
    if not line.strip():
        raise AuthFlowError("nothing was pasted")
    return parse_redirect(line, state), redirect_uri


def _seconds(value: object, default: float, low: float, high: float) -> float:
    """A provider's number of seconds, defaulted when absent or absurd, kept in bounds."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return default
    return min(max(number, low), high) if math.isfinite(number) else default


def device_grant(
    cfg: Config, out: TextIO, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """RFC 8628: show the user code, poll honouring interval and slow_down."""
    if not cfg.device_auth_url:
        raise ConfigError(f"{cfg.path}: the device flow needs device_auth_url")
    check_url(cfg.device_auth_url)
    fields = {**client_fields(cfg), "scope": cfg.scope}
    try:
        start = provider_post(cfg, cfg.device_auth_url, fields)
    except OAuthErrorReply as exc:
        raise AuthFlowError(f"device authorization refused: {exc}") from None
    try:
        device_code = str(start["device_code"])
        user_code = str(start["user_code"])
        uri = str(start.get("verification_uri") or start["verification_url"])
    except KeyError as exc:
        raise AuthFlowError(f"device authorization reply lacks {exc.args[0]}") from None
    interval = _seconds(start.get("interval"), 5, 1, 60)
    deadline = time.monotonic() + _seconds(start.get("expires_in"), 600, 10, 3600)
    print(f"To authorise, visit {uri} and enter the code {user_code}", file=out)
    if start.get("verification_uri_complete"):
        print(f"(or open {start['verification_uri_complete']})", file=out)
    print("Waiting for approval ...", file=out, flush=True)
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": device_code,
        **client_fields(cfg),
    }
    while True:
        sleep(interval)
        if time.monotonic() >= deadline:
            raise AuthFlowError("the device code expired before it was approved; start again")
        try:
            return provider_post(cfg, cfg.token_url, poll)
        except Transient as exc:
            print(f"provider trouble while polling ({exc}); still waiting", file=out, flush=True)
        except OAuthErrorReply as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += 5  # RFC 8628 section 3.5
                continue
            if exc.error == "expired_token":
                raise AuthFlowError("the device code expired before it was approved") from None
            if exc.error == "access_denied":
                raise AuthFlowError("the user denied access") from None
            raise AuthFlowError(f"device flow failed: {exc}") from None


def authorize(
    cfg: Config,
    flow: str,
    *,
    out: TextIO,
    browser: bool = True,
    timeout: float = 300.0,
    read_line: Callable[[], str] = sys.stdin.readline,
) -> TokenState:
    """Run a flow, store refresh + access token. The state is Pending meanwhile."""
    refuse_oob(cfg)
    check_url(cfg.token_url)
    check_url(cfg.auth_url)
    previous = read_sidecar(cfg)
    with lock(cfg):
        save_phase(cfg, Phase.PENDING)
    try:
        if flow == "device":
            reply = device_grant(cfg, out)
        else:
            verifier, challenge = pkce_pair()
            state = secrets.token_urlsafe(24)
            if flow == "loopback":
                code, redirect_uri = loopback_code(cfg, state, challenge, out, browser, timeout)
            else:
                code, redirect_uri = manual_code(cfg, state, challenge, out, read_line)
            fields = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
                **client_fields(cfg),
            }
            try:
                reply = token_request(cfg, fields)
            except OAuthErrorReply as exc:
                raise AuthFlowError(f"exchanging the code failed: {exc}") from None
        with lock(cfg):
            return store_grant(cfg, reply, None)
    except BaseException:
        with lock(cfg):
            write_sidecar(cfg, previous)
        raise
