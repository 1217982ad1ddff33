"""The token lifecycle as one explicit state, kept in a sidecar JSON file next to the token.

Empty   no refresh token: run `authorize`
Pending an authorisation flow is under way
Active  access token valid until `expires_at` (and younger than max_age_sec)
Expired refresh token present, access token missing, old or about to expire: refresh
Revoked the provider said invalid_grant for this refresh token: re-authorise
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from enum import StrEnum

from tokens.config import Config
from tokens.files import atomic_write, read_secret


class Phase(StrEnum):
    EMPTY = "empty"
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Sidecar:
    """What the state file stores (never a token, only fingerprints)."""

    phase: str = Phase.EMPTY.value
    obtained_at: float | None = None
    expires_at: float | None = None
    access_fp: str | None = None
    refresh_fp: str | None = None


@dataclass(frozen=True)
class TokenState:
    phase: Phase
    access_token: str | None = None
    refresh_token: str | None = None
    obtained_at: float | None = None
    expires_at: float | None = None

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if self.phase is Phase.ACTIVE and self.expires_at is not None:
            return f"active, expires in {int(self.expires_at - now)} s"
        return self.phase.value


def read_sidecar(cfg: Config) -> Sidecar:
    try:
        raw = json.loads(cfg.state_file.read_text(encoding="utf-8"))
        return Sidecar(**{k: raw[k] for k in Sidecar.__dataclass_fields__ if k in raw})
    except (OSError, ValueError, TypeError):
        return Sidecar()  # missing or damaged: derive the state from the token files


def write_sidecar(cfg: Config, sidecar: Sidecar) -> None:
    atomic_write(cfg.state_file, (json.dumps(asdict(sidecar), indent=1) + "\n").encode())


def load_state(cfg: Config, now: float | None = None) -> TokenState:
    """Derive the current state from the refresh token, access token and sidecar."""
    now = time.time() if now is None else now
    sidecar = read_sidecar(cfg)
    refresh = read_secret(cfg.refresh_token_file)
    if refresh is None:
        return TokenState(Phase.PENDING if sidecar.phase == Phase.PENDING else Phase.EMPTY)
    if sidecar.phase == Phase.REVOKED and sidecar.refresh_fp == fingerprint(refresh):
        return TokenState(Phase.REVOKED, refresh_token=refresh)
    access = read_secret(cfg.access_token_file)
    fresh = (
        sidecar.phase == Phase.ACTIVE
        and access is not None
        and sidecar.access_fp == fingerprint(access)
        and sidecar.obtained_at is not None
        and sidecar.expires_at is not None
        and now - sidecar.obtained_at < cfg.max_age_sec
        and now < sidecar.expires_at - cfg.refresh_margin_sec
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


def save_phase(cfg: Config, phase: Phase, refresh: str | None = None) -> None:
    old = read_sidecar(cfg)
    write_sidecar(
        cfg,
        Sidecar(
            phase.value,
            old.obtained_at,
            old.expires_at,
            old.access_fp,
            fingerprint(refresh) if refresh else old.refresh_fp,
        ),
    )
