"""The mock OAuth2 provider's records: clients, tokens, codes, device grants, injected faults.

`Records` owns them and the one lock that guards them; `oauth_grants` adds the endpoint logic
on top, `oauth_provider` the HTTP server and the test controls.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_CLIENT_ID = "fetchmail-oauth2-test"
DEFAULT_CLIENT_SECRET = "test-client-secret"
PUBLIC_CLIENT_ID = "fetchmail-oauth2-public"
DEFAULT_USER = "user@example.com"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# "elsewhere" stands in for another host a hostile redirect points at
ENDPOINTS = ("authorize", "token", "device", "device/approve", "introspect", "revoke", "elsewhere")

FaultKind = Literal[
    "status",  # answer `status` with a JSON error (or `body`)
    "rate_limit",  # 429 + Retry-After
    "delay",  # sleep `delay`, then answer normally
    "timeout",  # sleep `delay`, close without answering
    "invalid_json",  # 200 with a non-JSON body
    "drop",  # close at once
    "trickle",  # the normal answer, one byte every `delay` seconds
    "redirect",  # `status` (302) with Location: `location` (default: /elsewhere)
    "oversized",  # 200 with a JSON body of about `size` bytes (access_token that long)
    "mangle",  # the normal answer with `fields` replaced by raw JSON text (NaN, 1e400, ...)
    "error",  # an RFC 6749 error reply: `error`, `description`, `status` (default 400)
]


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
    location: str | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    error: str = ""
    description: str = ""
    declare_length: bool = True  # oversized: send Content-Length (else: until close)


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


def same(a: str, b: str) -> bool:
    """Constant-time equality for any text (compare_digest refuses non-ASCII str)."""
    return secrets.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def pkce_ok(verifier: str, challenge: str, method: str) -> bool:
    if method == "plain":
        return same(verifier, challenge)
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return same(computed, challenge)


class Records:
    """Everything the provider remembers, guarded by `lock`; counters and the request log."""

    def __init__(self, *, token_lifetime: int, access_token_bytes: int) -> None:
        self.token_lifetime = token_lifetime
        self.access_token_bytes = access_token_bytes
        self.lock = threading.RLock()
        self.clients: dict[str, Client] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthCode] = {}
        self.devices: dict[str, DeviceGrant] = {}
        self.counts: Counter[str] = Counter()
        self.faults: dict[str, list[Fault]] = {}
        self.log: list[tuple[str, dict[str, str]]] = []  # (endpoint, params) of each request
        self.headers_seen: list[tuple[str, dict[str, str]]] = []  # (endpoint, headers)
        self.errors: list[str] = []  # internal errors (a bug here), answered with HTTP 500

    def new_refresh(self, user: str, scope: str, client_id: str) -> str:
        token = "mock-rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = RefreshToken(user, scope, client_id)
        return token

    def issue(
        self, user: str, scope: str, client_id: str, refresh: str | None, lifetime: int | None
    ) -> dict[str, Any]:
        """A token endpoint reply for a new access token (with `refresh` if given)."""
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

    def revoke_token(self, token: str) -> None:
        """Revoke a refresh token (and access tokens issued from it) or one access token."""
        if token in self.refresh_tokens:
            self.refresh_tokens[token].active = False
            for record in self.access_tokens.values():
                if record.refresh_token == token:
                    record.active = False
        elif token in self.access_tokens:
            self.access_tokens[token].active = False
        else:
            raise KeyError("unknown token")

    def device_by_user_code(self, user_code: str) -> DeviceGrant:
        for grant in self.devices.values():
            if grant.user_code == user_code:
                return grant
        raise KeyError(f"unknown user_code {user_code!r}")

    def take_fault(self, endpoint: str) -> Fault | None:
        """The fault queued for this request to `endpoint`, if any (caller holds the lock)."""
        queue = self.faults.get(endpoint)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault
