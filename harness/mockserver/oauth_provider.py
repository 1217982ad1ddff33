"""Mock OAuth2 provider on loopback: auth code + PKCE, refresh, device code, introspection.

Used by tests and by `fetchmail-harness serve` alike::

    with MockOAuthProvider() as provider:
        grant = provider.mint_token("alice@example.com")
        provider.inject("token", "status", status=503, count=2)   # next two /token calls fail
        ...
        assert provider.count("token:refresh_token") == 1

Endpoints: GET /authorize, POST /token, POST /device (RFC 8628), GET|POST /device/approve
(stands in for the user typing the code into a browser), POST /introspect (RFC 7662),
POST /revoke (RFC 7009), and /elsewhere (the "other host" an injected redirect points at: it
answers with a token of its own and `headers_seen` shows what a client sent it). Everything is
guarded by one lock; the HTTP server runs in a thread. The records live in `oauth_records`,
the grant logic in `oauth_grants`, the HTTP side in `oauth_http`.

Knobs: `token_lifetime`, `rotate_refresh_tokens`, `access_token_bytes` (long tokens),
`authorize_error` (/authorize redirects with that error), `user` (whom /authorize approves
unless login_hint names someone), `device_interval`, `register_client(id, secret|None)`,
`inject(endpoint, kind, count=N, ...)` with kind status|rate_limit|delay|timeout|invalid_json|
drop|trickle|redirect|oversized|mangle|error (see `FaultKind`), device helpers
`approve_device`/`deny_device`/`expire_device`/`script_device`/`on_device_authorization`.
Counters: `count("token")` per endpoint (every request, faults included),
`count("token:<grant_type>")` per grant that reached the grant logic,
`count("device:too_fast")` for polls that ignored the interval.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from harness.mockserver.oauth_grants import Grants
from harness.mockserver.oauth_http import ProviderServer
from harness.mockserver.oauth_records import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_USER,
    DEVICE_GRANT,
    ENDPOINTS,
    PUBLIC_CLIENT_ID,
    Client,
    Fault,
    FaultKind,
    OAuthError,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_USER",
    "DEVICE_GRANT",
    "ENDPOINTS",
    "PUBLIC_CLIENT_ID",
    "FaultKind",
    "MockOAuthProvider",
    "OAuthError",
]


class MockOAuthProvider(Grants):
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
        super().__init__(
            user=user,
            token_lifetime=token_lifetime,
            rotate_refresh_tokens=rotate_refresh_tokens,
            device_interval=device_interval,
            device_expires_in=device_expires_in,
            slow_down_increment=slow_down_increment,
            access_token_bytes=access_token_bytes,
            resource_credentials=resource_credentials,
        )
        self.host = host
        self._port = port
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._server: ProviderServer | None = None
        self._thread: threading.Thread | None = None
        self.register_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        self.register_client(PUBLIC_CLIENT_ID, None)

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> MockOAuthProvider:
        self._server = ProviderServer((self.host, self._port), self, self._stopping)
        self.base_url = self.url
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
        self._stopping.set()  # wakes handlers sleeping in a "timeout"/"delay"/"trickle" fault
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

    # ---- test controls ------------------------------------------------------------------------
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
        status: int | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        body: str | None = None,
        location: str | None = None,
        size: int = 0,
        fields: dict[str, str] | None = None,
        error: str = "",
        description: str = "",
        declare_length: bool = True,
    ) -> None:
        """Misbehave on the next `count` requests to `endpoint` ("token", "authorize", ...).

        status: answer `status` (503) with a JSON error (or `body`); rate_limit: 429 +
        Retry-After; delay: sleep `delay` s then answer normally; timeout: sleep `delay` (30 s)
        and close without answering; invalid_json: 200 with a non-JSON body; drop: close at
        once; trickle: the normal answer one byte every `delay` (1) s; redirect: `status` (302)
        to `location` (default /elsewhere); oversized: 200 with an access_token of `size` bytes
        (`declare_length=False`: no Content-Length, the body ends when the connection closes);
        mangle: the normal answer with `fields` ({"expires_in": "NaN"}) as raw JSON text;
        error: `status` (400) with {"error": `error`, "error_description": `description`}.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        default_status = {"redirect": 302, "error": 400, "rate_limit": 429}.get(kind, 503)
        if kind == "rate_limit":
            retry_after = 1 if retry_after is None else retry_after
        if kind == "timeout" and not delay:
            delay = 30.0
        if kind == "trickle" and not delay:
            delay = 1.0
        if kind == "error" and not error:
            raise ValueError("inject(..., 'error') needs error= (e.g. invalid_scope)")
        fault = Fault(
            kind,
            count,
            default_status if status is None else status,
            retry_after,
            delay,
            body,
            location,
            size,
            dict(fields or {}),
            error,
            description,
            declare_length,
        )
        with self.lock:
            self.faults.setdefault(endpoint, []).append(fault)

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
            self.headers_seen.clear()

    def mint_token(
        self,
        user: str = DEFAULT_USER,
        scope: str = "mail",
        lifetime: int | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
    ) -> dict[str, Any]:
        """Issue a token pair directly, as if the user had gone through a flow."""
        with self.lock:
            refresh = self.new_refresh(user, scope, client_id)
            return self.issue(user, scope, client_id, refresh, lifetime)

    def expire(self, access_token: str) -> None:
        """Make an access token expired (introspection says inactive)."""
        with self.lock:
            self.access_tokens[access_token].exp = int(time.time()) - 1

    def revoke(self, token: str) -> None:
        """Revoke a refresh token (and access tokens issued from it) or one access token."""
        with self.lock:
            self.revoke_token(token)

    def is_active(self, access_token: str) -> bool:
        with self.lock:
            record = self.access_tokens.get(access_token)
            return bool(record and record.active and record.exp > time.time())

    def deny_device(self, user_code: str) -> None:
        with self.lock:
            self.device_by_user_code(user_code).status = "denied"

    def expire_device(self, user_code: str) -> None:
        with self.lock:
            self.device_by_user_code(user_code).expires_at = time.time() - 1

    def script_device(self, user_code: str, *errors: str) -> None:
        """Answer the next polls of this device grant with these errors, in order."""
        with self.lock:
            self.device_by_user_code(user_code).script.extend(errors)

    def on_device_authorization(self, callback: Callable[[str], None] | None) -> None:
        """Call `callback(user_code)` (outside the lock) whenever /device issues a code."""
        self.device_callback = callback


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
