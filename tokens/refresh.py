"""Keep the access token fresh: exactly one refresh under a file lock, atomic writes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from filelock import FileLock, Timeout

from tokens.config import Config
from tokens.errors import ConfigError, ProviderUnavailable, ReauthRequired
from tokens.files import atomic_write, remove_stale_temps
from tokens.http import OAuthErrorReply, Transient, post_form, with_retries
from tokens.state import Phase, TokenState, load_state, save_active, save_phase

LOCK_TIMEOUT = 600.0
DEFAULT_LIFETIME = 3600


@dataclass(frozen=True)
class Outcome:
    changed: bool
    state: TokenState

    @property
    def token(self) -> str:
        assert self.state.access_token is not None
        return self.state.access_token


def reauth_hint(cfg: Config) -> str:
    return f"re-authorisation needed: run `fetchmail-oauth2 -c {cfg.config_arg} authorize`"


def lock(cfg: Config) -> FileLock:
    return FileLock(str(cfg.lock_file), timeout=LOCK_TIMEOUT, mode=0o600)


def client_fields(cfg: Config) -> dict[str, str]:
    """The client's form fields: its id, and its secret unless that goes by HTTP Basic."""
    fields = {"client_id": cfg.client_id}
    secret = cfg.client_secret()
    if secret and cfg.client_auth == "post":
        fields["client_secret"] = secret
    return fields


def client_basic(cfg: Config) -> tuple[str, str] | None:
    """(id, secret) for an Authorization: Basic header when client_auth=basic."""
    secret = cfg.client_secret()
    return (cfg.client_id, secret) if secret and cfg.client_auth == "basic" else None


def provider_post(cfg: Config, url: str, fields: dict[str, str]) -> dict[str, Any]:
    """One POST to a provider endpoint, authenticated as the config's client."""
    return post_form(url, fields, timeout=cfg.http_timeout_sec, basic=client_basic(cfg))


def token_request(cfg: Config, fields: dict[str, str]) -> dict[str, Any]:
    """POST to the token endpoint with bounded retries on transient failures."""
    return with_retries(
        lambda: provider_post(cfg, cfg.token_url, fields),
        retries=cfg.retries,
        backoff=cfg.retry_backoff_sec,
    )


def store_grant(cfg: Config, reply: dict[str, Any], old_refresh: str | None) -> TokenState:
    """Write a token endpoint reply: refresh token first, then access token, then the state."""
    access = reply.get("access_token")
    if not isinstance(access, str) or not access or any(c.isspace() for c in access):
        raise Transient("the provider's reply has no usable access_token")
    refresh = reply.get("refresh_token") or old_refresh
    if not isinstance(refresh, str) or not refresh:
        raise ReauthRequired(
            "the provider issued no refresh token (Google: needs access_type=offline and "
            "prompt=consent; Microsoft: needs the offline_access scope); " + reauth_hint(cfg)
        )
    try:
        life = float(reply.get("expires_in", DEFAULT_LIFETIME))
    except (TypeError, ValueError):
        life = DEFAULT_LIFETIME
    now = time.time()
    if refresh != old_refresh:
        atomic_write(cfg.refresh_token_file, (refresh + "\n").encode())
    atomic_write(cfg.access_token_file, (access + "\n").encode())
    save_active(cfg, access, refresh, now, life)
    return TokenState(Phase.ACTIVE, access, refresh, now, now + life)


def _refresh_locked(cfg: Config, state: TokenState) -> TokenState:
    if state.phase is Phase.PENDING:
        raise ReauthRequired(
            "an authorisation is in progress (or was interrupted); finish it, or "
            + reauth_hint(cfg)
        )
    if state.phase is Phase.EMPTY or state.refresh_token is None:
        raise ReauthRequired(f"no refresh token in {cfg.refresh_token_file}; " + reauth_hint(cfg))
    if state.phase is Phase.REVOKED:
        raise ReauthRequired("the refresh token was revoked or expired; " + reauth_hint(cfg))
    fields = {
        "grant_type": "refresh_token",
        "refresh_token": state.refresh_token,
        **client_fields(cfg),
    }
    try:
        reply = token_request(cfg, fields)
    except OAuthErrorReply as exc:
        if exc.error == "invalid_grant":
            save_phase(cfg, Phase.REVOKED, state.refresh_token)
            raise ReauthRequired(
                f"the provider rejected the refresh token ({exc.description or exc.error}); "
                + reauth_hint(cfg)
            ) from None
        if exc.error in ("invalid_client", "unauthorized_client"):
            raise ConfigError(
                f"the provider rejected the client ({exc}); check client_id, "
                f"client_secret/client_secret_cmd and client_auth (post or basic) in {cfg.path}"
            ) from None
        raise
    except Transient as exc:
        kept = "the old access token was kept" if state.access_token else "no token yet"
        raise ProviderUnavailable(f"refresh failed: {exc}; {kept}; try again later") from None
    return store_grant(cfg, reply, state.refresh_token)


def ensure_fresh(cfg: Config, *, force: bool = False) -> Outcome:
    """Refresh when needed (or forced). Concurrent callers: one refreshes, the rest reuse it."""
    state = load_state(cfg)
    if state.phase is Phase.ACTIVE and not force:
        return Outcome(False, state)
    try:
        with lock(cfg):
            remove_stale_temps(cfg.access_token_file, older_than=0)
            remove_stale_temps(cfg.refresh_token_file, older_than=0)
            remove_stale_temps(cfg.state_file, older_than=0)
            seen = state
            state = load_state(cfg)  # someone may have refreshed while we waited
            if state.phase is Phase.ACTIVE and (
                not force or state.access_token != seen.access_token
            ):
                return Outcome(False, state)
            return Outcome(True, _refresh_locked(cfg, state))
    except Timeout:
        raise ProviderUnavailable(
            f"another refresher has held {cfg.lock_file} for {LOCK_TIMEOUT:g} s"
        ) from None
