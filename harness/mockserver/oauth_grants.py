"""The mock provider's endpoint logic: params in, a JSON object (or OAuthError) out, no HTTP."""

from __future__ import annotations

import contextlib
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from harness.mockserver.oauth_records import (
    DEFAULT_USER,
    DEVICE_GRANT,
    AuthCode,
    Client,
    DeviceGrant,
    OAuthError,
    Records,
    pkce_ok,
    same,
)


class Grants(Records):
    """RFC 6749 code and refresh grants, RFC 8628 device grant, RFC 7662/7009 endpoints."""

    def __init__(
        self,
        *,
        user: str,
        token_lifetime: int,
        rotate_refresh_tokens: bool,
        device_interval: int,
        device_expires_in: int,
        slow_down_increment: int,
        access_token_bytes: int,
        resource_credentials: tuple[str, str],
    ) -> None:
        super().__init__(token_lifetime=token_lifetime, access_token_bytes=access_token_bytes)
        self.user = user  # who /authorize auto-approves (unless login_hint names someone)
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.device_interval = device_interval
        self.device_expires_in = device_expires_in
        self.slow_down_increment = slow_down_increment
        self.resource_credentials = resource_credentials
        self.authorize_error: str | None = None  # e.g. "access_denied": /authorize redirects it
        self.device_callback: Callable[[str], None] | None = None
        self.base_url = ""  # set once the HTTP server listens (for verification_uri)

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
        if client.secret is not None and not (secret is not None and same(secret, client.secret)):
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
            if not verifier or not pkce_ok(verifier, code.challenge, code.method):
                raise OAuthError("invalid_grant", "PKCE verification failed")
        refresh = self.new_refresh(code.user, code.scope, client.client_id)
        return self.issue(code.user, code.scope, client.client_id, refresh, None)

    def _grant_refresh(self, client: Client, params: Mapping[str, str]) -> dict[str, Any]:
        token = params.get("refresh_token", "")
        record = self.refresh_tokens.get(token)
        if record is None or not record.active or record.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        if self.rotate_refresh_tokens:
            record.active = False
            token = self.new_refresh(record.user, record.scope, client.client_id)
            return self.issue(record.user, record.scope, client.client_id, token, None)
        reply = self.issue(record.user, record.scope, client.client_id, token, None)
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
        refresh = self.new_refresh(grant.user, grant.scope, client.client_id)
        return self.issue(grant.user, grant.scope, client.client_id, refresh, None)

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
                user=DEFAULT_USER,
            )
            callback = self.device_callback
        if callback is not None:
            callback(user_code)
        verification = self.base_url + "/device/approve"
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
            same(basic[0], self.resource_credentials[0])
            and same(basic[1], self.resource_credentials[1])
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
                self.revoke_token(params.get("token", ""))
        return {}

    def approve_device(self, user_code: str, user: str | None = None) -> None:
        """The user enters `user_code` at the verification URI and consents."""
        with self.lock:
            grant = self.device_by_user_code(user_code)
            grant.status = "approved"
            grant.user = user or self.user

    def handle_elsewhere(self) -> dict[str, Any]:
        """What "another host" answers when a client follows a redirect: a token of its own."""
        return {"access_token": "elsewhere-token", "token_type": "Bearer", "expires_in": 3600}
