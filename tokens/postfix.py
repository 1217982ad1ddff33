"""postfix's SASL password map (`[relay]:port user:token`) fed by one or more accounts."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from tokens.config import Config
from tokens.errors import ConfigError, PostmapError, ProviderUnavailable, TokenError
from tokens.files import atomic_write, check_private
from tokens.refresh import ensure_fresh
from tokens.state import load_state

DB_SUFFIXES = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}


@dataclass(frozen=True)
class MapResult:
    rebuilt: bool
    entries: int
    failures: list[TokenError]


def map_entry(cfg: Config, token: str) -> tuple[str, str]:
    key = cfg.postfix_key or cfg.postfix_relay
    if not key:
        raise ConfigError(f"{cfg.path}: set postfix_relay (e.g. [smtp.gmail.com]:587)")
    if not cfg.user:
        raise ConfigError(f"{cfg.path}: set user (the SASL login name for the relay)")
    return key, f"{cfg.user}:{token}"


def render(entries: list[tuple[str, str]]) -> str:
    seen: set[str] = set()
    for key, _ in entries:
        if key in seen:
            raise ConfigError(
                f"two accounts use the map key {key!r}; give each a postfix_key (its sender "
                "address) and enable smtp_sender_dependent_authentication in postfix"
            )
        seen.add(key)
    return "".join(f"{key} {value}\n" for key, value in entries)


def _db_exists(map_path: Path, db_type: str | None) -> bool:
    suffixes = [DB_SUFFIXES[db_type]] if db_type in DB_SUFFIXES else set(DB_SUFFIXES.values())
    return any(map_path.with_name(map_path.name + s).exists() for s in suffixes)


def build_map(
    configs: list[Config],
    map_path: Path,
    *,
    postmap: str = "postmap",
    db_type: str | None = None,
    config_dir: Path | None = None,
    force: bool = False,
) -> MapResult:
    """Refresh every account, then rewrite the map + run postmap only when its content changed.

    An account whose provider is down keeps its old token in the map (the failure is reported).
    """
    entries: list[tuple[str, str]] = []
    failures: list[TokenError] = []
    for cfg in configs:
        try:
            token = ensure_fresh(cfg).token
        except ProviderUnavailable as exc:
            old = load_state(cfg).access_token
            if old is None:
                raise
            failures.append(exc)
            token = old
        entries.append(map_entry(cfg, token))
    content = render(entries).encode("utf-8")
    with FileLock(str(map_path) + ".lock", timeout=300, mode=0o600):
        try:
            check_private(map_path)
            old_content = map_path.read_bytes()
        except FileNotFoundError:
            old_content = None
        if old_content == content and _db_exists(map_path, db_type) and not force:
            return MapResult(False, len(entries), failures)
        atomic_write(map_path, content)
        target = f"{db_type}:{map_path}" if db_type else str(map_path)
        try:
            done = subprocess.run(
                [postmap, *(["-c", str(config_dir)] if config_dir else []), target],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostmapError(f"cannot run {postmap!r}: {exc}") from exc
        if done.returncode != 0:
            if old_content is not None:  # so the next run sees a change and retries postmap
                atomic_write(map_path, old_content)
            else:
                map_path.unlink()
            raise PostmapError(f"{postmap} {target} failed: {done.stderr.strip()}")
        for suffix in set(DB_SUFFIXES.values()):  # the database holds tokens too
            db = map_path.with_name(map_path.name + suffix)
            if db.exists():
                db.chmod(0o600)
    return MapResult(True, len(entries), failures)
