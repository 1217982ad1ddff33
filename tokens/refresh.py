"""Keep the access token fresh: exactly one refresh under a file lock, atomic writes.

The no-op path (token still fresh) reads three small files and imports neither `requests`
nor `filelock`: cron and systemd run it every few minutes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple

from tokens.config import Config
from tokens.errors import (
    ClientRefused,
    ProviderRefused,
    ProviderUnavailable,
    ReauthRequired,
    ScopeRefused,
    TokenError,
)
from tokens.files import atomic_write, ensure_private_dir, remove_stale_temps
from tokens.state import (
    NEEDS_PERSON,
    Phase,
    TokenState,
    load_state,
    save_active,
    save_phase,
)
from tokens.store import read_refresh, write_refresh

if TYPE_CHECKING:
    from filelock import FileLock

    from tokens.http import OAuthErrorReply

LOCK_TIMEOUT = 600.0

# provider error -> the state it leaves the account in
ERROR_PHASES = {
    "invalid_grant": Phase.REAUTH,
    "interaction_required": Phase.REAUTH,  # Microsoft: MFA / conditional access
    "login_required": Phase.REAUTH,
    "consent_required": Phase.REAUTH,
    "invalid_scope": Phase.SCOPE,
    "invalid_client": Phase.CLIENT,
    "unauthorized_client": Phase.CLIENT,
}
TRANSIENT_ERRORS = ("temporarily_unavailable", "server_error")
ERROR_CLASSES: dict[Phase, type[TokenError]] = {
    Phase.REAUTH: ReauthRequired,
    Phase.SCOPE: ScopeRefused,
    Phase.CLIENT: ClientRefused,
    Phase.REFUSED: ProviderRefused,
}


class Outcome(NamedTuple):
    changed: bool
    state: TokenState

    @property
    def token(self) -> str:
        assert self.state.access_token is not None
        return self.state.access_token


def reauth_hint(cfg: Config) -> str:
    return f"re-authorisation needed: run `{cfg.command('authorize')}`"


def next_step(cfg: Config, phase: Phase) -> str:
    """The command a person runs once they have done what `advice` says."""
    if phase in (Phase.REAUTH, Phase.SCOPE):
        return cfg.command("authorize")
    return cfg.command("refresh --force")


def advice(cfg: Config, phase: Phase, reason: str) -> str:
    """What the provider's refusal means and what to do about it."""
    if phase is Phase.REAUTH:
        what = "the provider refused the refresh token"
        if "AADSTS65001" in reason or "consent" in reason.lower():
            what = "consent is missing (the user's, or the tenant admin's for this app)"
        elif "interaction_required" in reason or "AADSTS5007" in reason:
            what = "the provider wants an interactive sign-in (MFA or conditional access)"
        return f"{what} ({reason}); {reauth_hint(cfg)}"
    if phase is Phase.SCOPE:
        return (
            f"the provider refused the scope {cfg.scope!r} ({reason}); fix scope= in {cfg.path} "
            "(Google: https://mail.google.com/; Microsoft: the IMAP/POP/SMTP scopes and "
            f"offline_access), then run `{cfg.command('authorize')}`"
        )
    if phase is Phase.CLIENT:
        return (
            f"the provider refused the client ({reason}); check client_id, "
            f"client_secret/client_secret_cmd and client_auth (post or basic) in {cfg.path}; "
            "Microsoft: a client without a secret needs 'Allow public client flows' in its app "
            "registration, and a tenant may need its admin to allow the app; then run "
            f"`{cfg.command('refresh --force')}`"
        )
    return (
        f"the provider refused the request ({reason}); check the config {cfg.path}, then run "
        f"`{cfg.command('refresh --force')}`"
    )


def person_error(cfg: Config, phase: Phase, reason: str) -> TokenError:
    return ERROR_CLASSES[phase](advice(cfg, phase, reason))


def lock(cfg: Config) -> FileLock:
    from filelock import FileLock

    ensure_private_dir(cfg.lock_file.parent)
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
    from tokens.http import post_form

    return post_form(url, fields, timeout=cfg.http_timeout_sec, basic=client_basic(cfg))


def token_request(cfg: Config, fields: dict[str, str]) -> dict[str, Any]:
    """POST to the token endpoint with bounded retries on transient failures."""
    from tokens.http import with_retries

    return with_retries(
        lambda: provider_post(cfg, cfg.token_url, fields),
        retries=cfg.retries,
        backoff=cfg.retry_backoff_sec,
        timeout=cfg.http_timeout_sec,
    )


def store_grant(cfg: Config, reply: dict[str, Any], old_refresh: str | None) -> TokenState:
    """Write a token endpoint reply once it is validated: a rotated refresh token first (kept
    even when the access token of the same reply is unusable), then the access token, then
    the state."""
    from tokens.http import Unusable
    from tokens.reply import access_and_lifetime, rotated_refresh

    rotated = rotated_refresh(reply)
    refresh = rotated or old_refresh
    if refresh is None:
        raise ReauthRequired(
            "the provider issued no refresh token (Google: needs access_type=offline and "
            "prompt=consent; Microsoft: needs the offline_access scope); " + reauth_hint(cfg)
        )
    if rotated is not None and rotated != old_refresh:
        write_refresh(cfg, rotated)
    try:
        access, life = access_and_lifetime(reply)
    except Unusable as exc:
        if rotated is not None and rotated != old_refresh:
            save_phase(cfg, Phase.EXPIRED, rotated)
            raise Unusable(f"{exc}; the rotated refresh token was saved") from None
        raise
    now = time.time()
    atomic_write(cfg.access_token_file, (access + "\n").encode())
    save_active(cfg, access, refresh, now, life)
    return TokenState(Phase.ACTIVE, access, refresh, now, now + life)


def _refused(cfg: Config, state: TokenState, exc: OAuthErrorReply) -> TokenError:
    """Record a refusal (notifying on the transition) and return the error to raise."""
    from tokens.http import oneline
    from tokens.notify import notify

    phase = ERROR_PHASES.get(exc.error, Phase.REFUSED)
    reason = oneline(f"{exc.error}: {exc.description}" if exc.description else exc.error)
    save_phase(cfg, phase, state.refresh_token, reason)
    error = person_error(cfg, phase, reason)
    if state.phase is not phase:
        notify(cfg, phase.value, str(error), next_step(cfg, phase))
    return error


def _refresh_locked(cfg: Config, state: TokenState) -> TokenState:
    from tokens.http import OAuthErrorReply

    if state.phase is Phase.PENDING:
        raise ReauthRequired(
            "an authorisation is in progress (or was interrupted); finish it, or "
            + reauth_hint(cfg)
        )
    if state.phase is Phase.ACTIVE and state.refresh_token is None:  # a forced refresh
        state = state._replace(refresh_token=read_refresh(cfg))
    if state.phase is Phase.EMPTY or state.refresh_token is None:
        raise ReauthRequired(f"no refresh token in {cfg.refresh_source}; " + reauth_hint(cfg))
    fields = {
        "grant_type": "refresh_token",
        "refresh_token": state.refresh_token,
        **client_fields(cfg),
    }
    if cfg.provider == "microsoft" and cfg.scope:
        fields["scope"] = cfg.scope  # the v2.0 endpoint asks for it on refresh too
    kept = "the old access token was kept" if state.access_token else "no token yet"
    try:
        reply = token_request(cfg, fields)
        return store_grant(cfg, reply, state.refresh_token)
    except OAuthErrorReply as exc:
        if exc.error in TRANSIENT_ERRORS:
            raise ProviderUnavailable(f"refresh failed: {exc}; {kept}; try again later") from None
        raise _refused(cfg, state, exc) from None
    except ProviderUnavailable as exc:
        raise ProviderUnavailable(f"refresh failed: {exc}; {kept}; try again later") from None


def ensure_fresh(cfg: Config, *, force: bool = False) -> Outcome:
    """Refresh when needed (or forced). Concurrent callers: one refreshes, the rest reuse it.
    A state that needs a person is not retried without `force`."""
    state = load_state(cfg)
    if state.phase is Phase.ACTIVE and not force:
        return Outcome(False, state)
    if state.phase in NEEDS_PERSON and not force:
        raise person_error(cfg, state.phase, state.reason or "?")
    from filelock import Timeout

    try:
        with lock(cfg):
            for path in (cfg.access_token_file, cfg.refresh_token_file, cfg.state_file):
                if path is not None:
                    remove_stale_temps(path, older_than=0)
            seen = state
            state = load_state(cfg)  # someone may have refreshed while we waited
            if state.phase is Phase.ACTIVE and (
                not force or state.access_token != seen.access_token
            ):
                return Outcome(False, state)
            if state.phase in NEEDS_PERSON and not force:
                raise person_error(cfg, state.phase, state.reason or "?")
            return Outcome(True, _refresh_locked(cfg, state))
    except Timeout:
        raise ProviderUnavailable(
            f"another refresher has held {cfg.lock_file} for {LOCK_TIMEOUT:g} s"
        ) from None
