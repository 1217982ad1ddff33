"""The token lifecycle as one explicit state, kept in a sidecar JSON file next to the token.

empty    no refresh token: run `authorize`
pending  an authorisation flow is under way
active   access token valid until `expires_at` (and younger than max_age_sec)
expired  refresh token present, access token missing, old or about to expire: refresh
reauth   the provider refused the refresh token (invalid_grant, interaction_required, ...)
scope    the provider refused the scope (invalid_scope)
client   the provider refused the client (invalid_client, unauthorized_client)
refused  the provider refused the request for another reason

The last four need a person; they are remembered (with the provider's reason) so that cron
runs do not ask again until the refresh token (or, for `client`, the client config) changes
or `refresh --force` is run.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import NamedTuple

from tokens.config import Config
from tokens.files import atomic_write, read_secret
from tokens.store import read_refresh

try:  # the built-in module: hashlib would load OpenSSL (3 ms of every no-op run)
    from _sha256 import sha256  # Python 3.11
except ImportError:  # pragma: no cover - other versions and builds
    from hashlib import sha256

MARGIN_FRACTION = 0.5  # the refresh margin is at most this part of a token's lifetime


class Phase(StrEnum):
    EMPTY = "empty"
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    REAUTH = "reauth"
    SCOPE = "scope"
    CLIENT = "client"
    REFUSED = "refused"


NEEDS_PERSON = (Phase.REAUTH, Phase.SCOPE, Phase.CLIENT, Phase.REFUSED)
LEGACY_PHASES = {"revoked": Phase.REAUTH.value}
DESCRIPTIONS = {
    Phase.REAUTH: "re-authorisation needed",
    Phase.SCOPE: "scope refused",
    Phase.CLIENT: "client refused",
    Phase.REFUSED: "request refused",
}


def fingerprint(token: str) -> str:
    return sha256(token.encode("utf-8")).hexdigest()[:16]


def client_fingerprint(cfg: Config) -> str:
    """Changes when the client settings do (so a `client` state is retried after a fix)."""
    secret = cfg.client_secret_value or cfg.client_secret_cmd or ""
    return fingerprint("\0".join((cfg.client_id, secret, cfg.client_auth, cfg.token_url)))


class Sidecar(NamedTuple):
    """What the state file stores (never a token, only fingerprints)."""

    phase: str = Phase.EMPTY.value
    obtained_at: float | None = None
    expires_at: float | None = None
    access_fp: str | None = None
    refresh_fp: str | None = None
    reason: str | None = None
    client_fp: str | None = None


class TokenState(NamedTuple):
    phase: Phase
    access_token: str | None = None
    refresh_token: str | None = None
    obtained_at: float | None = None
    expires_at: float | None = None
    reason: str | None = None

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if self.phase is Phase.ACTIVE and self.expires_at is not None:
            return f"active, expires in {int(self.expires_at - now)} s"
        if self.phase in DESCRIPTIONS:
            return f"{self.phase.value}: {DESCRIPTIONS[self.phase]} ({self.reason or '?'})"
        return self.phase.value


def read_sidecar(cfg: Config) -> Sidecar:
    try:
        raw = json.loads(cfg.state_file.read_text(encoding="utf-8"))
        values = {k: raw[k] for k in Sidecar._fields if k in raw}
        values["phase"] = LEGACY_PHASES.get(values.get("phase", ""), values.get("phase"))
        sidecar = Sidecar(**values)
        Phase(sidecar.phase)
        for key in ("obtained_at", "expires_at"):
            value = getattr(sidecar, key)
            if value is not None and not isinstance(value, int | float):
                raise TypeError(key)
        return sidecar
    except (OSError, ValueError, TypeError):
        return Sidecar()  # missing or damaged: derive the state from the token files


def write_sidecar(cfg: Config, sidecar: Sidecar) -> None:
    atomic_write(cfg.state_file, (json.dumps(sidecar._asdict(), indent=1) + "\n").encode())


def _fresh(cfg: Config, sidecar: Sidecar, access: str | None, now: float) -> bool:
    if sidecar.phase != Phase.ACTIVE.value or access is None:
        return False
    obtained, expires = sidecar.obtained_at, sidecar.expires_at
    if obtained is None or expires is None or sidecar.access_fp != fingerprint(access):
        return False
    margin = min(cfg.refresh_margin_sec, MARGIN_FRACTION * max(expires - obtained, 0.0))
    return now - obtained < cfg.max_age_sec and now < expires - margin


def load_state(cfg: Config, now: float | None = None) -> TokenState:
    """Derive the current state from the refresh token, access token and sidecar."""
    now = time.time() if now is None else now
    sidecar = read_sidecar(cfg)
    access = read_secret(cfg.access_token_file)
    fresh = _fresh(cfg, sidecar, access, now)
    if fresh and cfg.refresh_token_file is None:  # refresh_token_cmd runs only when needed
        return TokenState(Phase.ACTIVE, access, None, sidecar.obtained_at, sidecar.expires_at)
    refresh = read_refresh(cfg)
    if refresh is None:
        return TokenState(Phase.PENDING if sidecar.phase == Phase.PENDING else Phase.EMPTY)
    phase = Phase(sidecar.phase)
    if (
        phase in NEEDS_PERSON
        and sidecar.refresh_fp == fingerprint(refresh)
        and (phase is not Phase.CLIENT or sidecar.client_fp == client_fingerprint(cfg))
    ):
        return TokenState(
            phase, access, refresh, sidecar.obtained_at, sidecar.expires_at, sidecar.reason
        )
    return TokenState(
        Phase.ACTIVE if fresh else Phase.EXPIRED,
        access_token=access,
        refresh_token=refresh,
        obtained_at=sidecar.obtained_at,
        expires_at=sidecar.expires_at,
    )


def save_active(cfg: Config, access: str, refresh: str, obtained_at: float, life: float) -> None:
    write_sidecar(
        cfg,
        Sidecar(
            Phase.ACTIVE.value,
            obtained_at,
            obtained_at + life,
            fingerprint(access),
            fingerprint(refresh),
        ),
    )


def save_phase(
    cfg: Config, phase: Phase, refresh: str | None = None, reason: str | None = None
) -> None:
    """Record `phase` (keeping the access token's metadata); a person-needed phase is tied to
    the refresh token it is about (and, for `client`, to the client settings)."""
    old = read_sidecar(cfg)
    write_sidecar(
        cfg,
        Sidecar(
            phase.value,
            old.obtained_at,
            old.expires_at,
            old.access_fp,
            fingerprint(refresh) if refresh else old.refresh_fp,
            reason,
            client_fingerprint(cfg) if phase is Phase.CLIENT else None,
        ),
    )
