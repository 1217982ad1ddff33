"""postfix's SASL password map (`[relay]:port user:token` / `sender user:token`).

One job refreshes every account and rebuilds the map: tokens are read under the map's lock
(so two runs cannot publish an older token after a newer one), the map is built beside the
old one with postmap and renamed over it (a new inode: postfix notices even two rebuilds in
one second), and the new files keep the old ones' mode, owner and group.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from tokens.config import Config
from tokens.errors import ConfigError, PostmapError, TokenError
from tokens.files import atomic_write, check_private, ensure_private_dir, fsync_dir, keep_owner
from tokens.refresh import ensure_fresh
from tokens.state import load_state

if TYPE_CHECKING:
    from filelock import FileLock

DB_SUFFIXES = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}
MAP_LOCK_TIMEOUT = 300


class MapResult(NamedTuple):
    rebuilt: bool
    entries: int
    failures: list[TokenError]
    skipped: list[str]  # accounts refreshed but not in the map


def relay_key(relay: str) -> str:
    """postfix's spelling of a relay host as a map key: [host]:port (brackets: no MX lookup)."""
    host, sep, port = relay.rpartition(":")
    if not sep or not port.isdigit():
        host, port = relay, "587"
    return f"[{host.strip('[]')}]:{port}"


def map_key(cfg: Config) -> str:
    if cfg.postfix_key:
        return cfg.postfix_key
    if not cfg.postfix_relay:
        raise ConfigError(f"{cfg.name}: set postfix_relay (e.g. [smtp.gmail.com]:587)")
    return relay_key(cfg.postfix_relay)


def check_entries(configs: list[Config]) -> None:
    """Refuse, before anything runs, accounts the map cannot hold."""
    seen: dict[str, str] = {}
    for cfg in configs:
        if not cfg.user:
            raise ConfigError(f"{cfg.name}: set user (the SASL login name for the relay)")
        key = map_key(cfg)
        if key in seen:
            raise ConfigError(
                f"{cfg.name} and {seen[key]} use the map key {key!r}; give each a postfix_key "
                "(its sender address) and enable smtp_sender_dependent_authentication in postfix"
            )
        seen[key] = cfg.name


def render(entries: list[tuple[str, str]]) -> str:
    return "".join(f"{key} {value}\n" for key, value in entries)


def _map_lock(map_path: Path) -> FileLock:
    from filelock import FileLock

    ensure_private_dir(map_path.parent)
    return FileLock(str(map_path) + ".lock", timeout=MAP_LOCK_TIMEOUT, mode=0o600)


def _db_files(base: Path, db_type: str | None) -> list[Path]:
    suffixes = [DB_SUFFIXES[db_type]] if db_type in DB_SUFFIXES else set(DB_SUFFIXES.values())
    return [base.with_name(base.name + s) for s in suffixes]


def _looks(path: Path) -> tuple[int, int, int] | None:
    """(mode, uid, gid) of an existing file, None when there is none."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def _dress(path: Path, looks: tuple[int, int, int] | None) -> None:
    """Give a new file the mode, owner and group of the one it replaces (0600 if none)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if looks is not None:
            keep_owner(fd, (looks[1], looks[2]))
        os.fchmod(fd, looks[0] if looks else 0o600)
        os.fsync(fd)
    finally:
        os.close(fd)


def _tokens(configs: list[Config]) -> tuple[dict[str, str], list[TokenError]]:
    """Refresh every account; an account that fails keeps its old token (if it has one)."""
    tokens: dict[str, str] = {}
    failures: list[TokenError] = []
    for cfg in configs:
        try:
            tokens[cfg.name] = ensure_fresh(cfg).token
        except TokenError as exc:
            failures.append(TokenError(f"{cfg.name}: {exc}", exc.exit_code))
            old = load_state(cfg).access_token
            if old is not None:
                tokens[cfg.name] = old
    return tokens, failures


def build_map(
    configs: list[Config],
    map_path: Path,
    *,
    postmap: str = "postmap",
    db_type: str | None = None,
    config_dir: Path | None = None,
    force: bool = False,
) -> MapResult:
    """Refresh every account, then rebuild the map (only when its content changed) from the
    accounts with postfix_relay or postfix_key."""
    relayed = [c for c in configs if c.in_postfix_map]
    if not relayed:
        raise ConfigError(
            "none of the -c accounts sets postfix_relay or postfix_key: nothing for the map"
        )
    check_entries(relayed)
    skipped = [c.name for c in configs if not c.in_postfix_map]
    from filelock import Timeout

    try:
        with _map_lock(map_path):
            tokens, failures = _tokens(configs)
            entries = [
                (map_key(c), f"{c.user}:{tokens[c.name]}") for c in relayed if c.name in tokens
            ]
            content = render(entries).encode("utf-8")
            rebuilt = _publish(map_path, content, postmap, db_type, config_dir, force)
    except Timeout:
        raise PostmapError(
            f"another run has held {map_path}.lock for {MAP_LOCK_TIMEOUT} s"
        ) from None
    return MapResult(rebuilt, len(entries), failures, skipped)


def _publish(
    map_path: Path,
    content: bytes,
    postmap: str,
    db_type: str | None,
    config_dir: Path | None,
    force: bool,
) -> bool:
    """Build the map beside the old one and rename it over; False when nothing changed."""
    looks = _looks(map_path)
    if looks is not None:
        check_private(map_path, group_ok=True)
        old = map_path.read_bytes()
        if old == content and any(p.exists() for p in _db_files(map_path, db_type)) and not force:
            return False
    new = map_path.with_name(f".{map_path.name}.new")
    for leftover in (new, *_db_files(new, db_type)):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    atomic_write(new, content)
    target = f"{db_type}:{new}" if db_type else str(new)
    try:
        done = subprocess.run(
            [postmap, *(["-c", str(config_dir)] if config_dir else []), target],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            umask=0o077,  # the database holds tokens from its first byte
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        new.unlink()
        raise PostmapError(f"cannot run {postmap!r}: {exc}") from exc
    built = [p for p in _db_files(new, db_type) if p.exists()]
    if done.returncode != 0 or not built:
        for leftover in (new, *built):
            leftover.unlink()
        why = done.stderr.strip() or f"exit {done.returncode}, no database written"
        raise PostmapError(f"{postmap} {target} failed: {why}")
    for db in built:  # the database first: it is what postfix reads
        final = map_path.with_name(map_path.name + db.name[len(new.name) :])
        _dress(db, _looks(final) or looks)
        os.replace(db, final)
    _dress(new, looks)
    os.replace(new, map_path)
    fsync_dir(map_path.parent)
    return True
