"""Small holes found under fault injection (issue 11 §4)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.tokens_cli import Account, run_cli


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"access_token_file": "{refresh}"}, "is also the refresh_token_file"),
        ({"state_file": "{refresh}"}, "is also the refresh_token_file"),
        ({"state_file": "{access}"}, "is also the access_token_file"),
        ({"refresh_token_file": "{config}"}, "is also the config file"),
        ({"refresh_token_file": "{access}.lock"}, "lock file"),
    ],
)
def test_aliasing_files_are_refused(
    account: Account, provider: MockOAuthProvider, overrides: dict[str, str], needle: str
) -> None:
    grant = account.seed()
    names = {
        "refresh": account.refresh_file,
        "access": account.access_file,
        "config": account.config,
    }
    account.write_config(**{k: v.format(**names) for k, v in overrides.items()})
    config_before = account.config.read_bytes()
    done = account.run("refresh")
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr
    assert account.refresh_file.read_text().strip() == grant["refresh_token"]
    assert account.config.read_bytes() == config_before
    assert provider.count("token") == 0


def test_alias_through_a_symlink(account: Account, provider: MockOAuthProvider) -> None:
    account.seed()
    link = account.dir / "link"
    link.symlink_to(account.refresh_file)
    account.write_config(access_token_file=str(link))
    done = account.run("refresh")
    assert done.returncode == 2 and "is also the refresh_token_file" in done.stderr


def test_stale_temp_cleanup_uses_no_glob(account: Account, provider: MockOAuthProvider) -> None:
    """An access_token_file named `*` once made the cleanup delete other .tmp files."""
    account.seed()
    account.write_config(access_token_file=str(account.dir / "*"))
    unrelated = [account.dir / ".other.abcd1234.tmp", account.dir / ".x.y.tmp"]
    for path in unrelated:
        path.write_text("someone else's\n")
        os.utime(path, (0, 0))  # old: a cleanup would take it for a leftover
    ours = account.dir / ".*.zzzz9999.tmp"  # what a killed writer of `*` would leave
    ours.write_text("leftover\n")
    os.utime(ours, (0, 0))
    done = account.run("refresh")
    assert done.returncode == 0, done.stderr
    assert provider.is_active((account.dir / "*").read_text().strip())
    assert all(path.exists() for path in unrelated)
    assert not ours.exists()


def test_malformed_line_is_not_echoed(account: Account) -> None:
    account.config.write_text(account.config.read_text() + "client_secret: hunter2\n")
    done = account.run("refresh")
    assert done.returncode == 2
    assert "hunter2" not in done.stderr + done.stdout
    assert "expected `key = value` (did you mean `client_secret = ...`?)" in done.stderr
    account.write_config()
    account.config.write_text(account.config.read_text() + "hunter2 = x\n")
    unknown = account.run("refresh")
    assert unknown.returncode == 2 and "unknown key" in unknown.stderr
    assert "hunter2" not in unknown.stderr
    account.write_config()
    account.config.write_text(account.config.read_text() + "hunter2\n")
    bare = account.run("refresh")
    assert bare.returncode == 2 and "hunter2" not in bare.stderr


@pytest.mark.parametrize("key", ["access_token_file", "refresh_token_file", "state_file"])
def test_directory_where_a_file_belongs(account: Account, key: str) -> None:
    account.seed()
    directory = account.dir / f"{key}.d"
    directory.mkdir()
    account.write_config(**{key: str(directory)})
    done = account.run("refresh")
    assert done.returncode == 2, done.stderr
    assert "is a directory" in done.stderr and "chmod" not in done.stderr


def test_config_that_is_a_directory(tmp_path: Path) -> None:
    done = run_cli("-c", str(tmp_path), "status")
    assert done.returncode == 2 and "is a directory" in done.stderr
    assert "chmod" not in done.stderr


def test_token_and_lock_directories_are_private(
    account: Account, provider: MockOAuthProvider
) -> None:
    account.seed()
    nested = account.dir / "new" / "deeper"
    account.write_config(access_token_file=str(nested / "token"))
    old = os.umask(0o022)
    try:
        done = account.run("refresh")
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    for directory in (account.dir / "new", nested):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert (nested / "token.lock").exists()
