"""Bearer-token validators: a protocol, an RFC 7662 introspection client, an in-memory table."""

from __future__ import annotations

import base64
import enum
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class Verdict(enum.Enum):
    OK = "ok"
    INVALID = "invalid"  # bad, expired, wrong user or scope: the error challenge follows
    UNAVAILABLE = "unavailable"  # could not ask: temporary failure, no challenge


@dataclass(frozen=True)
class Validation:
    verdict: Verdict
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


@runtime_checkable
class BearerValidator(Protocol):
    """Decides whether `token` lets `user` in. Called from a worker thread; may block."""

    def validate(self, user: str, token: str) -> Validation: ...


@dataclass
class _Grant:
    user: str
    scope: str
    expires_at: float | None


class InMemoryValidator:
    """Tokens registered by tests/users: `add(token, user)`, `expire(token)`, `remove(token)`."""

    def __init__(self, required_scope: str | None = None) -> None:
        self.required_scope = required_scope
        self.unavailable = False  # flip to simulate an unreachable authorization server
        self._lock = threading.Lock()
        self._tokens: dict[str, _Grant] = {}

    def add(
        self, token: str, user: str, scope: str = "mail", lifetime: float | None = None
    ) -> None:
        expires = None if lifetime is None else time.time() + lifetime
        with self._lock:
            self._tokens[token] = _Grant(user, scope, expires)

    def expire(self, token: str) -> None:
        with self._lock:
            self._tokens[token].expires_at = time.time() - 1

    def remove(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def validate(self, user: str, token: str) -> Validation:
        if self.unavailable:
            return Validation(Verdict.UNAVAILABLE, "validator marked unavailable")
        with self._lock:
            grant = self._tokens.get(token)
        if grant is None:
            return Validation(Verdict.INVALID, "unknown token")
        return check_claims(
            user,
            active=True,
            token_user=grant.user,
            scope=grant.scope,
            exp=grant.expires_at,
            required_scope=self.required_scope,
        )


class IntrospectionValidator:
    """RFC 7662: POST token=... with HTTP Basic resource credentials to `introspection_url`."""

    def __init__(
        self,
        introspection_url: str,
        client_id: str,
        client_secret: str,
        required_scope: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.introspection_url = introspection_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.required_scope = required_scope
        self.timeout = timeout

    def introspect(self, token: str) -> dict[str, object]:
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"})
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        request = urllib.request.Request(
            self.introspection_url,
            data=body.encode(),
            method="POST",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            answer = json.loads(response.read().decode("utf-8"))
        if not isinstance(answer, dict):
            raise ValueError("introspection answer is not a JSON object")
        return answer

    def validate(self, user: str, token: str) -> Validation:
        try:
            claims = self.introspect(token)
        except (OSError, ValueError, urllib.error.URLError) as exc:  # HTTPError is an OSError
            return Validation(Verdict.UNAVAILABLE, f"introspection failed: {exc}")
        exp = claims.get("exp")
        token_user = claims.get("username") or claims.get("email") or claims.get("sub")
        return check_claims(
            user,
            active=claims.get("active") is True,
            token_user=token_user if isinstance(token_user, str) else None,
            scope=str(claims.get("scope") or ""),
            exp=float(exp) if isinstance(exp, int | float) else None,
            required_scope=self.required_scope,
        )


def check_claims(
    user: str,
    *,
    active: bool,
    token_user: str | None,
    scope: str,
    exp: float | None,
    required_scope: str | None,
) -> Validation:
    if not active:
        return Validation(Verdict.INVALID, "token not active")
    if exp is not None and exp <= time.time():
        return Validation(Verdict.INVALID, "token expired")
    if token_user != user:
        return Validation(Verdict.INVALID, "token belongs to another user")
    if required_scope and required_scope not in scope.split():
        return Validation(Verdict.INVALID, f"scope {required_scope!r} missing")
    return Validation(Verdict.OK)
