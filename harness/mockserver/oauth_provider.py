"""Mock OAuth2 provider on loopback: auth code + PKCE, refresh, device code, introspection.

Used by tests and by `fetchmail-harness serve` alike::

    with MockOAuthProvider() as provider:
        grant = provider.mint_token("alice@example.com")
        provider.inject("token", "status", status=503, count=2)   # next two /token calls fail
        ...
        assert provider.count("token:refresh_token") == 1

Endpoints: GET /authorize, POST /token, POST /device (RFC 8628), GET|POST /device/approve
(stands in for the user typing the code into a browser), POST /introspect (RFC 7662),
POST /revoke (RFC 7009). Everything is guarded by one lock; the HTTP server runs in a thread.

Knobs: `token_lifetime`, `rotate_refresh_tokens`, `access_token_bytes` (long tokens),
`authorize_error` (/authorize redirects with that error), `user` (whom /authorize approves
unless login_hint names someone), `device_interval`, `register_client(id, secret|None)`,
`inject(endpoint, kind, count=N, ...)` with kind status|rate_limit|delay|timeout|invalid_json|
drop, device helpers `approve_device`/`deny_device`/`expire_device`/`script_device`/
`on_device_authorization`. Counters: `count("token")` per endpoint (every request, faults
included), `count("token:<grant_type>")` per grant that reached the grant logic,
`count("device:too_fast")` for polls that ignored the interval.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import secrets
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

DEFAULT_CLIENT_ID = "fetchmail-oauth2-test"
DEFAULT_CLIENT_SECRET = "test-client-secret"
PUBLIC_CLIENT_ID = "fetchmail-oauth2-public"
DEFAULT_USER = "user@example.com"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ENDPOINTS = ("authorize", "token", "device", "device/approve", "introspect", "revoke")

FaultKind = Literal["status", "rate_limit", "delay", "timeout", "invalid_json", "drop"]


class OAuthError(Exception):
    """An RFC 6749 error response."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(error)
        self.error, self.description, self.status = error, description, status


@dataclass
class Client:
    client_id: str
    secret: str | None = None  # None: public client (PKCE, no secret)
    auth_method: str | None = None  # "basic" or "post": accept only that one (None: either)


@dataclass
class Fault:
    """An injected misbehaviour for the next `remaining` requests to one endpoint."""

    kind: FaultKind
    remaining: int
    status: int = 503
    retry_after: int | None = None
    delay: float = 0.0
    body: str | None = None


@dataclass
class AccessToken:
    user: str
    scope: str
    client_id: str
    exp: int
    refresh_token: str | None
    active: bool = True


@dataclass
class RefreshToken:
    user: str
    scope: str
    client_id: str
    active: bool = True


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    challenge: str | None
    method: str


@dataclass
class DeviceGrant:
    client_id: str
    scope: str
    user_code: str
    expires_at: float
    interval: int
    status: Literal["pending", "approved", "denied", "used"] = "pending"
    user: str = DEFAULT_USER
    last_poll: float | None = None
    script: list[str] = field(default_factory=list)  # errors to answer the next polls with


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _same(a: str, b: str) -> bool:
    """Constant-time equality for any text (compare_digest refuses non-ASCII str)."""
    return secrets.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def _pkce_ok(verifier: str, challenge: str, method: str) -> bool:
    if method == "plain":
        return _same(verifier, challenge)
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return _same(computed, challenge)


class MockOAuthProvider:
    """Threaded loopback OAuth2 provider with fault injection and per-endpoint counters."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        user: str = DEFAULT_USER,
        token_lifetime: int = 3600,
        rotate_refresh_tokens: bool = False,
        device_interval: int = 5,
        device_expires_in: int = 600,
        slow_down_increment: int = 5,
        access_token_bytes: int = 32,
        resource_credentials: tuple[str, str] = ("mailserver", "mailserver-secret"),
    ) -> None:
        self.host = host
        self._port = port
        self.user = user  # who /authorize auto-approves (unless login_hint names someone)
        self.token_lifetime = token_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.device_interval = device_interval
        self.device_expires_in = device_expires_in
        self.slow_down_increment = slow_down_increment
        self.access_token_bytes = access_token_bytes
        self.resource_credentials = resource_credentials
        self.authorize_error: str | None = None  # e.g. "access_denied": /authorize redirects it
        self.lock = threading.RLock()
        self.clients: dict[str, Client] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthCode] = {}
        self.devices: dict[str, DeviceGrant] = {}
        self.counts: Counter[str] = Counter()
        self.faults: dict[str, list[Fault]] = {}
        self.log: list[tuple[str, dict[str, str]]] = []  # (endpoint, params) of each request
        self.errors: list[str] = []  # internal errors (a bug here), answered with HTTP 500
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.register_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        self.register_client(PUBLIC_CLIENT_ID, None)

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> MockOAuthProvider:
        handler = _make_handler(self)
        server_cls: type[ThreadingHTTPServer] = ThreadingHTTPServer
        if ":" in self.host:
            server_cls = _V6Server
        self._server = server_cls((self.host, self._port), handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="mock-oauth-provider", daemon=True)
        self._thread.start()
        self.ready.wait(10)
        return self

    def _serve(self) -> None:
        assert self._server is not None
        self.ready.set()
        self._server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a "timeout"/"delay" fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.ready.clear()

    def __enter__(self) -> MockOAuthProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- addresses ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("MockOAuthProvider is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def authorize_url(self) -> str:
        return self.url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def device_url(self) -> str:
        return self.url + "/device"

    @property
    def introspection_url(self) -> str:
        return self.url + "/introspect"

    @property
    def revocation_url(self) -> str:
        return self.url + "/revoke"

    # ---- test knobs ---------------------------------------------------------------------------
    def register_client(
        self, client_id: str, secret: str | None = None, *, auth_method: str | None = None
    ) -> None:
        """Add a client; secret None makes it public (PKCE only). auth_method "basic" or
        "post" makes the provider accept the secret only that way (RFC 6749 2.3.1)."""
        if auth_method not in (None, "basic", "post"):
            raise ValueError(f"auth_method must be basic or post, not {auth_method!r}")
        with self.lock:
            self.clients[client_id] = Client(client_id, secret, auth_method)

    def inject(
        self,
        endpoint: str,
        kind: FaultKind,
        *,
        count: int = 1,
        status: int = 503,
        retry_after: int | None = None,
        delay: float = 0.0,
        body: str | None = None,
    ) -> None:
        """Misbehave on the next `count` requests to `endpoint` ("token", "authorize", ...).

        status: answer `status` with a JSON error (or `body`); rate_limit: 429 + Retry-After;
        delay: sleep `delay` s then answer normally; timeout: sleep `delay` (default 30 s) and close
        without answering; invalid_json: 200 with a non-JSON body; drop: close at once.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        if kind == "rate_limit":
            status = 429
            retry_after = 1 if retry_after is None else retry_after
        if kind == "timeout" and not delay:
            delay = 30.0
        with self.lock:
            self.faults.setdefault(endpoint, []).append(
                Fault(kind, count, status, retry_after, delay, body)
            )

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def count(self, key: str) -> int:
        """Requests seen: by endpoint ("token") or by grant ("token:refresh_token")."""
        with self.lock:
            return self.counts[key]

    def reset_counts(self) -> None:
        with self.lock:
            self.counts.clear()
            self.log.clear()

    def mint_token(
        self,
        user: str = DEFAULT_USER,
        scope: str = "mail",
        lifetime: int | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
    ) -> dict[str, Any]:
        """Issue a token pair directly, as if the user had gone through a flow."""
        with self.lock:
            refresh = self._new_refresh(user, scope, client_id)
            return self._issue(user, scope, client_id, refresh, lifetime)

    def expire(self, access_token: str) -> None:
        """Make an access token expired (introspection says inactive)."""
        with self.lock:
            self.access_tokens[access_token].exp = int(time.time()) - 1

    def revoke(self, token: str) -> None:
        """Revoke a refresh token (and access tokens issued from it) or one access token."""
        with self.lock:
            if token in self.refresh_tokens:
                self.refresh_tokens[token].active = False
                for record in self.access_tokens.values():
                    if record.refresh_token == token:
                        record.active = False
            elif token in self.access_tokens:
                self.access_tokens[token].active = False
            else:
                raise KeyError("unknown token")

    def is_active(self, access_token: str) -> bool:
        with self.lock:
            record = self.access_tokens.get(access_token)
            return bool(record and record.active and record.exp > time.time())

    def approve_device(self, user_code: str, user: str | None = None) -> None:
        """The user enters `user_code` at the verification URI and consents."""
        with self.lock:
            grant = self._device_by_user_code(user_code)
            grant.status = "approved"
            grant.user = user or self.user

    def deny_device(self, user_code: str) -> None:
        with self.lock:
            self._device_by_user_code(user_code).status = "denied"

    def expire_device(self, user_code: str) -> None:
        with self.lock:
            self._device_by_user_code(user_code).expires_at = time.time() - 1

    def script_device(self, user_code: str, *errors: str) -> None:
        """Answer the next polls of this device grant with these errors, in order."""
        with self.lock:
            self._device_by_user_code(user_code).script.extend(errors)

    def on_device_authorization(self, callback: Callable[[str], None] | None) -> None:
        """Call `callback(user_code)` (outside the lock) whenever /device issues a code."""
        self._device_callback = callback

    _device_callback: Callable[[str], None] | None = None

    def _device_by_user_code(self, user_code: str) -> DeviceGrant:
        for grant in self.devices.values():
            if grant.user_code == user_code:
                return grant
        raise KeyError(f"unknown user_code {user_code!r}")

    # ---- token issuing (callers hold the lock) -------------------------------------------------
    def _new_refresh(self, user: str, scope: str, client_id: str) -> str:
        token = "mock-rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = RefreshToken(user, scope, client_id)
        return token

    def _issue(
        self, user: str, scope: str, client_id: str, refresh: str | None, lifetime: int | None
    ) -> dict[str, Any]:
        life = self.token_lifetime if lifetime is None else lifetime
        token = "mock-at-" + secrets.token_urlsafe(self.access_token_bytes)
        self.access_tokens[token] = AccessToken(
            user, scope, client_id, int(time.time()) + life, refresh
        )
        reply: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": life,
            "scope": scope,
        }
        if refresh is not None:
            reply["refresh_token"] = refresh
        return reply

    # ---- endpoint logic (pure: params in, (status, json) out) ---------------------------------
    def _client(self, params: Mapping[str, str], basic: tuple[str, str] | None) -> Client:
        client_id, secret = basic if basic else (params.get("client_id", ""), None)
        if not basic:
            secret = params.get("client_secret")
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", f"unknown client_id {client_id!r}", 401)
        used = "basic" if basic else "post" if secret is not None else None
        if client.secret is not None and client.auth_method not in (None, used):
            raise OAuthError(
                "invalid_client",
                f"this client must authenticate with client_secret_{client.auth_method}",
                401,
            )
        if client.secret is not None and not (secret is not None and _same(secret, client.secret)):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    def handle_authorize(self, params: Mapping[str, str]) -> tuple[int, str]:
        """Returns (status, Location or error text)."""
        with self.lock:
            client = self.clients.get(params.get("client_id", ""))
            redirect_uri = params.get("redirect_uri", "")
            if client is None or not redirect_uri:
                return 400, "unknown client_id or missing redirect_uri"
            state = params.get("state")
            reply: dict[str, str] = {}
            method = params.get("code_challenge_method", "plain")
            if self.authorize_error:
                reply["error"] = self.authorize_error
            elif params.get("response_type") != "code":
                reply["error"] = "unsupported_response_type"
            elif method not in ("S256", "plain"):
                reply["error"] = "invalid_request"
            elif client.secret is None and not params.get("code_challenge"):
                reply["error"] = "invalid_request"  # public clients must use PKCE
            else:
                code = "mock-code-" + secrets.token_urlsafe(16)
                self.codes[code] = AuthCode(
                    client.client_id,
                    redirect_uri,
                    params.get("scope", "mail"),
                    params.get("login_hint") or self.user,
                    params.get("code_challenge"),
                    method,
                )
                reply["code"] = code
            if state is not None:
                reply["state"] = state
            sep = "&" if "?" in redirect_uri else "?"
            return 302, redirect_uri + sep + urllib.parse.urlencode(reply)

    def handle_token(
        self, params: Mapping[str, str], basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        grant = params.get("grant_type", "")
        with self.lock:
            self.counts[f"token:{grant}"] += 1
            client = self._client(params, basic)
            if grant == "authorization_code":
                return self._grant_code(client, params)
            if grant == "refresh_token":
                return self._grant_refresh(client, params)
            if grant == DEVICE_GRANT:
                return self._grant_device(client, params)
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r}")

    def _grant_code(self, client: Client, params: Mapping[str, str]) -> dict[str, Any]:
        code = self.codes.pop(params.get("code", ""), None)  # single use
        if code is None or code.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown, used or foreign authorization code")
        if code.redirect_uri != params.get("redirect_uri"):
            raise OAuthError("invalid_grant", "redirect_uri does not match")
        if code.challenge is not None:
            verifier = params.get("code_verifier")
            if not verifier or not _pkce_ok(verifier, code.challenge, code.method):
                raise OAuthError("invalid_grant", "PKCE verification failed")
        refresh = self._new_refresh(code.user, code.scope, client.client_id)
        return self._issue(code.user, code.scope, client.client_id, refresh, None)

    def _grant_refresh(self, client: Client, params: Mapping[str, str]) -> dict[str, Any]:
        token = params.get("refresh_token", "")
        record = self.refresh_tokens.get(token)
        if record is None or not record.active or record.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        if self.rotate_refresh_tokens:
            record.active = False
            token = self._new_refresh(record.user, record.scope, client.client_id)
            return self._issue(record.user, record.scope, client.client_id, token, None)
        reply = self._issue(record.user, record.scope, client.client_id, token, None)
        del reply["refresh_token"]  # like Google: the old refresh token stays valid
        return reply

    def _grant_device(self, client: Client, params: Mapping[str, str]) -> dict[str, Any]:
        grant = self.devices.get(params.get("device_code", ""))
        if grant is None or grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown device_code")
        now = time.time()
        too_fast = grant.last_poll is not None and now - grant.last_poll < grant.interval - 0.05
        grant.last_poll = now
        if grant.status == "used":
            raise OAuthError("invalid_grant", "device_code already used")
        if now >= grant.expires_at:
            raise OAuthError("expired_token", "the device code has expired")
        if too_fast:  # checked first: a client ignoring interval/slow_down is always caught
            grant.interval += self.slow_down_increment
            self.counts["device:too_fast"] += 1
            raise OAuthError("slow_down", f"poll at most every {grant.interval} s")
        if grant.script:
            error = grant.script.pop(0)
            if error == "slow_down":
                grant.interval += self.slow_down_increment
            raise OAuthError(error)
        if grant.status == "denied":
            raise OAuthError("access_denied", "the user declined")
        if grant.status == "pending":
            raise OAuthError("authorization_pending")
        grant.status = "used"
        refresh = self._new_refresh(grant.user, grant.scope, client.client_id)
        return self._issue(grant.user, grant.scope, client.client_id, refresh, None)

    def handle_device(
        self, params: Mapping[str, str], basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        with self.lock:
            client = self._client(params, basic)
            device_code = "mock-dc-" + secrets.token_urlsafe(24)
            alphabet = "BCDFGHJKLMNPQRSTVWXZ"
            user_code = "".join(secrets.choice(alphabet) for _ in range(8))
            user_code = f"{user_code[:4]}-{user_code[4:]}"
            self.devices[device_code] = DeviceGrant(
                client.client_id,
                params.get("scope", "mail"),
                user_code,
                time.time() + self.device_expires_in,
                self.device_interval,
            )
            callback = self._device_callback
        if callback is not None:
            callback(user_code)
        verification = self.url + "/device/approve"
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification,
            "verification_uri_complete": verification + "?user_code=" + user_code,
            "expires_in": self.device_expires_in,
            "interval": self.device_interval,
        }

    def handle_introspect(
        self, params: Mapping[str, str], basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        if basic is None or not (
            _same(basic[0], self.resource_credentials[0])
            and _same(basic[1], self.resource_credentials[1])
        ):
            raise OAuthError("invalid_client", "introspection needs the resource credentials", 401)
        with self.lock:
            record = self.access_tokens.get(params.get("token", ""))
            if record is None or not record.active or record.exp <= time.time():
                return {"active": False}
            return {
                "active": True,
                "username": record.user,
                "email": record.user,
                "sub": record.user,
                "scope": record.scope,
                "exp": record.exp,
                "client_id": record.client_id,
                "token_type": "Bearer",
            }

    def handle_revoke(
        self, params: Mapping[str, str], basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        with self.lock:
            self._client(params, basic)
            with contextlib.suppress(KeyError):  # RFC 7009: unknown tokens are no error
                self.revoke(params.get("token", ""))
        return {}


def _make_handler(provider: MockOAuthProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "MockOAuth/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read counters, not logs

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _basic(self) -> tuple[str, str] | None:
            header = self.headers.get("Authorization", "")
            if not header.lower().startswith("basic "):
                return None
            try:
                raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, _, password = raw.partition(":")
            # RFC 6749 2.3.1: both parts are form-urlencoded before base64
            return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)

        def _params(self, method: str) -> dict[str, str]:
            query = urllib.parse.urlsplit(self.path).query
            params = dict(urllib.parse.parse_qsl(query))
            if method == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                params.update(urllib.parse.parse_qsl(body))
            return params

        def _dispatch(self, method: str) -> None:
            endpoint = urllib.parse.urlsplit(self.path).path.strip("/")
            params = self._params(method)
            with provider.lock:
                provider.counts[endpoint] += 1
                provider.log.append((endpoint, dict(params)))
                fault = self._take_fault(endpoint)
            if fault is not None and self._apply_fault(fault):
                return
            try:
                self._route(method, endpoint, params)
            except OAuthError as exc:
                body: dict[str, Any] = {"error": exc.error}
                if exc.description:
                    body["error_description"] = exc.description
                self._json(exc.status, body)
            except Exception as exc:  # a bug in the mock: answer, and let tests see it
                with provider.lock:
                    provider.errors.append(f"{endpoint}: {type(exc).__name__}: {exc}")
                self._json(500, {"error": "server_error", "error_description": "mock bug"})

        def _take_fault(self, endpoint: str) -> Fault | None:
            queue = provider.faults.get(endpoint)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return fault

        def _apply_fault(self, fault: Fault) -> bool:
            """Returns True when the fault replaced the answer."""
            if fault.kind == "delay":
                provider._stopping.wait(fault.delay)
                return False
            if fault.kind == "timeout":
                provider._stopping.wait(fault.delay)
                self.close_connection = True
                return True
            if fault.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return True
            if fault.kind == "invalid_json":
                self._send(200, (fault.body or "<html>not json").encode(), "application/json")
                return True
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            if fault.body is not None:
                self._send(fault.status, fault.body.encode(), "text/plain", headers)
            else:
                error = {"error": "temporarily_unavailable", "error_description": "injected"}
                self._json(fault.status, error, headers)
            return True

        def _route(self, method: str, endpoint: str, params: dict[str, str]) -> None:
            basic = self._basic()
            if endpoint == "authorize" and method == "GET":
                status, text = provider.handle_authorize(params)
                if status == 302:
                    self._send(302, b"", "text/plain", {"Location": text})
                else:
                    self._send(status, text.encode(), "text/plain")
            elif endpoint == "token" and method == "POST":
                self._json(200, provider.handle_token(params, basic))
            elif endpoint == "device" and method == "POST":
                self._json(200, provider.handle_device(params, basic))
            elif endpoint == "device/approve":
                try:
                    provider.approve_device(params.get("user_code", ""), params.get("user"))
                except KeyError:
                    self._send(404, b"unknown user_code\n", "text/plain")
                    return
                self._send(200, b"approved\n", "text/plain")
            elif endpoint == "introspect" and method == "POST":
                self._json(200, provider.handle_introspect(params, basic))
            elif endpoint == "revoke" and method == "POST":
                self._json(200, provider.handle_revoke(params, basic))
            else:
                self._send(404, b"not found\n", "text/plain")

        def _json(
            self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
        ) -> None:
            extra = {"Cache-Control": "no-store", **(headers or {})}
            self._send(status, json.dumps(body).encode(), "application/json", extra)

        def _send(
            self,
            status: int,
            payload: bytes,
            content_type: str,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def main() -> int:
    """`python -m harness.mockserver.oauth_provider [PORT]`: serve until interrupted."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with MockOAuthProvider(port=port) as provider:
        grant = provider.mint_token()
        print(f"mock OAuth2 provider at {provider.url}", flush=True)
        print(f"client {DEFAULT_CLIENT_ID} / {DEFAULT_CLIENT_SECRET}; public {PUBLIC_CLIENT_ID}")
        print(f"resource credentials {provider.resource_credentials}")
        print(f"sample token for {DEFAULT_USER}: {json.dumps(grant)}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
