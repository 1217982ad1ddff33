"""`postfix`: the SASL password map, checked with Debian's real postmap."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.skips import skip_loudly
from tests.helpers.tokens_cli import Account, cli_cmd, cli_env, run_cli

POSTMAP = shutil.which("postmap") or (
    "/usr/sbin/postmap" if Path("/usr/sbin/postmap").exists() else None
)


@pytest.fixture
def postmap(tmp_path: Path) -> tuple[str, Path]:
    """(postmap path, a config dir with an empty main.cf so postmap needs no installed postfix)."""
    if POSTMAP is None:
        skip_loudly(
            "postmap not found: apt-get install postfix (DEBIAN_FRONTEND=noninteractive, "
            'debconf "postfix/main_mailer_type select No configuration")'
        )
    assert POSTMAP is not None
    conf = tmp_path / "postfix-conf"
    conf.mkdir()
    (conf / "main.cf").write_text("")
    return POSTMAP, conf


def _query(postmap: tuple[str, Path], key: str, map_path: Path) -> str:
    done = subprocess.run(
        [postmap[0], "-c", str(postmap[1]), "-q", key, f"hash:{map_path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else f"<rc {done.returncode}>"


def _accounts(tmp_path: Path, provider: MockOAuthProvider) -> list[Account]:
    accounts = []
    for name in ("alice", "bob"):
        acct = Account(tmp_path, provider, name)
        acct.write_config(
            user=f"{name}@example.com",
            postfix_relay="[smtp.gmail.com]:587",
            postfix_key=f"{name}@example.com",
        )
        acct.seed(f"{name}@example.com")
        accounts.append(acct)
    return accounts


def _postfix(
    accounts: list[Account], map_path: Path, pm: tuple[str, Path], *extra: str
) -> subprocess.CompletedProcess[str]:
    configs = [arg for a in accounts for arg in ("-c", str(a.config))]
    return run_cli(
        *configs,
        "postfix",
        "--map",
        str(map_path),
        "--postmap",
        pm[0],
        "--postfix-config-dir",
        str(pm[1]),
        "--type",
        "hash",
        *extra,
    )


def test_single_relay_map(
    tmp_path: Path, provider: MockOAuthProvider, postmap: tuple[str, Path]
) -> None:
    acct = Account(tmp_path, provider, "solo")
    acct.write_config(user="solo@gmail.com", provider=None, postfix_relay="[smtp.gmail.com]:587")
    acct.seed("solo@gmail.com")
    map_path = tmp_path / "sasl_passwd"
    done = _postfix([acct], map_path, postmap)
    assert done.returncode == 0, done.stderr
    token = acct.access_file.read_text().strip()
    assert map_path.read_text() == f"[smtp.gmail.com]:587 solo@gmail.com:{token}\n"
    assert _query(postmap, "[smtp.gmail.com]:587", map_path) == f"solo@gmail.com:{token}"


def test_two_accounts_one_map_rebuilt_only_on_change(
    tmp_path: Path, provider: MockOAuthProvider, postmap: tuple[str, Path]
) -> None:
    accounts = _accounts(tmp_path, provider)
    map_path = tmp_path / "sasl_passwd"
    db = tmp_path / "sasl_passwd.db"
    done = _postfix(accounts, map_path, postmap)
    assert done.returncode == 0, done.stderr
    assert "rebuilt" in done.stderr
    for acct in accounts:
        token = acct.access_file.read_text().strip()
        user = f"{acct.name}@example.com"
        assert _query(postmap, user, map_path) == f"{user}:{token}"
    for path in (map_path, db):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the map holds tokens
    stamp = db.stat().st_mtime_ns, db.stat().st_ino

    again = _postfix(accounts, map_path, postmap)
    assert again.returncode == 0 and "unchanged" in again.stderr
    assert (db.stat().st_mtime_ns, db.stat().st_ino) == stamp  # postmap did not run

    accounts[1].age_state(100000)  # bob's token is due: the map must change
    third = _postfix(accounts, map_path, postmap)
    assert third.returncode == 0 and "rebuilt" in third.stderr
    bob_token = accounts[1].access_file.read_text().strip()
    assert _query(postmap, "bob@example.com", map_path) == f"bob@example.com:{bob_token}"
    assert provider.count("token:refresh_token") == 3


def test_duplicate_map_keys_are_refused(
    tmp_path: Path, provider: MockOAuthProvider, postmap: tuple[str, Path]
) -> None:
    accounts = _accounts(tmp_path, provider)
    for acct in accounts:
        acct.write_config(user=f"{acct.name}@example.com", postfix_relay="[smtp.gmail.com]:587")
    map_path = tmp_path / "sasl_passwd"
    done = _postfix(accounts, map_path, postmap)
    assert done.returncode == 2
    assert "postfix_key" in done.stderr and "smtp_sender_dependent_authentication" in done.stderr
    assert not map_path.exists()


def test_postmap_failure_is_reported_and_retried(
    tmp_path: Path, provider: MockOAuthProvider, postmap: tuple[str, Path]
) -> None:
    accounts = _accounts(tmp_path, provider)
    map_path = tmp_path / "sasl_passwd"
    broken = tmp_path / "conf-missing"  # postmap -c to a dir without main.cf fails
    done = _postfix(accounts, map_path, (postmap[0], broken))
    assert done.returncode == 7 and "failed" in done.stderr
    assert not map_path.exists()  # so the next run retries
    assert _postfix(accounts, map_path, postmap).returncode == 0
    assert _query(postmap, "alice@example.com", map_path).startswith("alice@example.com:")


def test_outage_keeps_old_token_in_map(
    tmp_path: Path, provider: MockOAuthProvider, postmap: tuple[str, Path]
) -> None:
    accounts = _accounts(tmp_path, provider)
    map_path = tmp_path / "sasl_passwd"
    assert _postfix(accounts, map_path, postmap).returncode == 0
    before = map_path.read_bytes()
    accounts[0].age_state(100000)
    provider.inject("token", "status", status=503, count=2)
    done = _postfix(accounts, map_path, postmap)
    assert done.returncode == 4 and "old access token was kept" in done.stderr
    assert map_path.read_bytes() == before


def test_rebuilt_map_is_a_new_file_with_the_old_mode_and_owner(
    tmp_path: Path, provider: MockOAuthProvider, postmap: tuple[str, Path]
) -> None:
    """postfix notices a rebuilt map by its new inode, even twice in one second; the admin's
    mode, owner and group survive every rebuild."""
    if os.geteuid() != 0:
        skip_loudly("needs root to give the map another owner")
    accounts = _accounts(tmp_path, provider)
    map_path = tmp_path / "sasl_passwd"
    db = tmp_path / "sasl_passwd.db"
    assert _postfix(accounts, map_path, postmap).returncode == 0
    for path in (map_path, db):
        os.chown(path, 65534, 65534)
        path.chmod(0o640)
    for _ in range(3):  # well within one second of each other
        with db.open("rb") as held:  # as postfix's smtp client holds the map it read
            done = _postfix(accounts, map_path, postmap, "--force")
            assert done.returncode == 0, done.stderr
            # what postfix checks: the file it holds is gone, the name is a new file
            assert os.fstat(held.fileno()).st_nlink == 0
            assert db.stat().st_ino != os.fstat(held.fileno()).st_ino
        for path in (map_path, db):
            st = path.stat()
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 65534, 65534)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".sasl_passwd")] == []
    token = accounts[0].access_file.read_text().strip()
    assert _query(postmap, "alice@example.com", map_path) == f"alice@example.com:{token}"


def test_map_readable_by_others_is_refused(
    tmp_path: Path, provider: MockOAuthProvider, postmap: tuple[str, Path]
) -> None:
    accounts = _accounts(tmp_path, provider)
    map_path = tmp_path / "sasl_passwd"
    assert _postfix(accounts, map_path, postmap).returncode == 0
    map_path.chmod(0o644)
    done = _postfix(accounts, map_path, postmap, "--force")
    assert done.returncode == 2 and "chmod o-rwx" in done.stderr


def test_accounts_without_a_map_key_are_refreshed_not_mapped(
    tmp_path: Path, provider: MockOAuthProvider, postmap: tuple[str, Path]
) -> None:
    accounts = _accounts(tmp_path, provider)
    fetch_only = Account(tmp_path, provider, "fetchonly")
    fetch_only.write_config(user="fetchonly@example.com")
    fetch_only.seed("fetchonly@example.com")
    map_path = tmp_path / "sasl_passwd"
    done = _postfix([*accounts, fetch_only], map_path, postmap)
    assert done.returncode == 0, done.stderr
    assert provider.is_active(fetch_only.access_file.read_text().strip())
    assert "fetchonly" not in map_path.read_text()
    assert "not in the map" in done.stderr
    alone = _postfix([fetch_only], map_path, postmap)
    assert alone.returncode == 2 and "postfix_relay or postfix_key" in alone.stderr


def test_tokens_are_read_under_the_map_lock(
    tmp_path: Path, provider: MockOAuthProvider, postmap: tuple[str, Path]
) -> None:
    """Concurrent jobs, each refreshing (max_age_sec = 0) and rebuilding: the map never goes
    back to a token older than one it already held."""
    acct = Account(tmp_path, provider, "solo")
    acct.write_config(
        user="solo@example.com", postfix_relay="[smtp.gmail.com]:587", max_age_sec="0"
    )
    acct.seed("solo@example.com")
    map_path = tmp_path / "sasl_passwd"
    slow = tmp_path / "slow-postmap"  # holds the map lock long enough for others to queue
    slow.write_text(f'#!/bin/sh\nsleep 0.2\nexec {postmap[0]} "$@"\n')
    slow.chmod(0o755)
    issued = list  # the provider's access tokens, in the order it issued them

    def published() -> int:
        token = map_path.read_text().split(":")[-1].strip()
        return issued(provider.access_tokens).index(token)

    order: list[int] = []
    for _ in range(5):
        procs = [
            subprocess.Popen(
                cli_cmd(
                    "-c",
                    str(acct.config),
                    "postfix",
                    "--map",
                    str(map_path),
                    "--postmap",
                    str(slow),
                    "--postfix-config-dir",
                    str(postmap[1]),
                ),
                env=cli_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        while any(p.poll() is None for p in procs):
            if map_path.exists():
                order.append(published())
        for proc in procs:
            assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
            if proc.stderr:
                proc.stderr.close()
        order.append(published())
    assert order == sorted(order), order
    assert issued(provider.access_tokens)[order[-1]] == acct.access_file.read_text().strip()
