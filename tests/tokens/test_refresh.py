"""`refresh`/`token`/`status` against the mock provider: freshness, revocation, outages."""

from __future__ import annotations

import json
import os
import stat

import pytest

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.tokens_cli import Account

REFRESHES = "token:refresh_token"


def test_first_refresh_writes_passwordfile_and_sidecar(
    account: Account, provider: MockOAuthProvider
) -> None:
    grant = account.seed()
    done = account.run("refresh")
    assert done.returncode == 0, done.stderr
    token = account.access_file.read_text()
    assert token.endswith("\n") and token.count("\n") == 1  # only the token + newline
    assert provider.is_active(token.strip())
    assert provider.count(REFRESHES) == 1
    for path in (account.access_file, account.state_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sidecar = json.loads(account.state_file.read_text())
    assert sidecar["phase"] == "active" and sidecar["expires_at"] > sidecar["obtained_at"]
    text = account.state_file.read_text() + done.stdout + done.stderr
    assert token.strip() not in text and grant["refresh_token"] not in text  # no secrets shown


def test_fresh_token_is_not_refreshed_again(account: Account, provider: MockOAuthProvider) -> None:
    account.seed()
    assert account.run("refresh").returncode == 0
    before = account.access_file.read_text()
    done = account.run("refresh")
    assert done.returncode == 0 and "still fresh" in done.stderr
    assert provider.count(REFRESHES) == 1
    assert account.access_file.read_text() == before


def test_old_token_is_refreshed_after_max_age(
    account: Account, provider: MockOAuthProvider
) -> None:
    account.write_config(max_age_sec="1800")
    account.seed()
    assert account.run("refresh").returncode == 0
    first = account.access_file.read_text()
    account.age_state(1801)  # older than max_age_sec, still far from expiry
    assert account.run("refresh").returncode == 0
    assert provider.count(REFRESHES) == 2
    assert account.access_file.read_text() != first


def test_token_near_expiry_is_refreshed(account: Account, provider: MockOAuthProvider) -> None:
    account.write_config(max_age_sec="100000", refresh_margin_sec="300")
    account.seed()
    assert account.run("refresh").returncode == 0
    assert account.run("refresh").returncode == 0
    assert provider.count(REFRESHES) == 1
    account.age_state(3600 - 299)  # 299 s left: inside the 300 s margin
    assert account.run("refresh").returncode == 0
    assert provider.count(REFRESHES) == 2


def test_margin_is_clamped_to_half_the_lifetime(
    account: Account, provider: MockOAuthProvider
) -> None:
    """60 s tokens with the default 300 s margin: fresh for their first 30 s, not never."""
    account.write_config(max_age_sec="100000")  # refresh_margin_sec: the default 300
    provider.token_lifetime = 60
    account.seed()
    assert account.run("refresh").returncode == 0
    assert account.run("refresh").returncode == 0
    assert provider.count(REFRESHES) == 1
    account.age_state(31)  # past half its lifetime
    assert account.run("refresh").returncode == 0
    assert provider.count(REFRESHES) == 2


def test_replaced_passwordfile_is_not_trusted(
    account: Account, provider: MockOAuthProvider
) -> None:
    account.seed()
    assert account.run("refresh").returncode == 0
    account.access_file.write_text("something-else\n")  # fingerprint no longer matches
    assert account.run("refresh").returncode == 0
    assert provider.count(REFRESHES) == 2
    assert provider.is_active(account.access_file.read_text().strip())


def test_revoked_refresh_token_needs_reauthorisation(
    account: Account, provider: MockOAuthProvider
) -> None:
    grant = account.seed()
    assert account.run("refresh").returncode == 0
    old = account.access_file.read_bytes()
    provider.revoke(grant["refresh_token"])
    done = account.run("refresh", "--force")
    assert done.returncode == 3, done.stderr
    assert "re-authorisation needed" in done.stderr
    assert f"fetchmail-oauth2 -c {account.config} authorize" in done.stderr
    assert account.access_file.read_bytes() == old
    status = account.run("status")
    assert "revoked" in status.stdout
    calls = provider.count(REFRESHES)
    again = account.run("refresh")
    assert again.returncode == 3
    assert provider.count(REFRESHES) == calls  # known revoked: no pointless request


def test_missing_refresh_token_says_authorize(account: Account) -> None:
    done = account.run("refresh")
    assert done.returncode == 3
    assert "no refresh token" in done.stderr and "authorize" in done.stderr
    assert "empty" in account.run("status").stdout


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("status", {"status": 503}),
        ("status", {"status": 500}),
        ("rate_limit", {"retry_after": 0}),
        ("timeout", {"delay": 3.0}),
        ("invalid_json", {}),
        ("drop", {}),
    ],
)
def test_outage_keeps_old_token(
    account: Account, provider: MockOAuthProvider, kind: str, options: dict[str, float]
) -> None:
    account.write_config(http_timeout_sec="1", retries="1")
    account.seed()
    assert account.run("refresh").returncode == 0
    before = account.access_file.read_bytes()
    inode = account.access_file.stat().st_ino
    provider.inject("token", kind, count=2, **options)  # type: ignore[arg-type]
    done = account.run("refresh", "--force")
    assert done.returncode == 4, done.stderr
    assert "old access token was kept" in done.stderr
    assert account.access_file.read_bytes() == before
    assert account.access_file.stat().st_ino == inode  # not even rewritten
    assert provider.count("token") == 3  # first refresh + 2 attempts (retries=1)
    assert provider.is_active(before.decode().strip())
    # once the provider is back, the next run succeeds
    assert account.run("refresh", "--force").returncode == 0
    assert account.access_file.read_bytes() != before


def test_transient_failure_is_retried(account: Account, provider: MockOAuthProvider) -> None:
    account.write_config(retries="2")
    account.seed()
    provider.inject("token", "status", status=502)
    provider.inject("token", "rate_limit", retry_after=0)
    done = account.run("refresh")
    assert done.returncode == 0, done.stderr
    assert provider.count("token") == 3


def test_rotating_refresh_tokens_are_stored(account: Account, provider: MockOAuthProvider) -> None:
    provider.rotate_refresh_tokens = True
    grant = account.seed()
    assert account.run("refresh").returncode == 0
    rotated = account.refresh_file.read_text().strip()
    assert rotated != grant["refresh_token"]
    assert stat.S_IMODE(account.refresh_file.stat().st_mode) == 0o600
    assert account.run("refresh", "--force").returncode == 0  # works with the new one
    assert account.refresh_file.read_text().strip() not in (rotated, grant["refresh_token"])


def test_token_printed_only_when_asked(account: Account, provider: MockOAuthProvider) -> None:
    account.seed()
    refused = account.run("token")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "--print" in refused.stderr
    shown = account.run("token", "--print")
    assert shown.returncode == 0
    assert shown.stdout == account.access_file.read_text()
    assert provider.is_active(shown.stdout.strip())


def test_quiet_refresh_prints_nothing(account: Account) -> None:
    account.seed()
    done = account.run("--quiet", "refresh")
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


def test_refresh_file_readable_by_others_is_refused(account: Account) -> None:
    account.seed()
    os.chmod(account.refresh_file, 0o644)
    done = account.run("refresh")
    assert done.returncode == 2
    assert f"chmod 600 {account.refresh_file}" in done.stderr


def test_passwordfile_readable_by_others_is_refused(account: Account) -> None:
    account.seed()
    assert account.run("refresh").returncode == 0
    os.chmod(account.access_file, 0o640)
    before = account.access_file.read_bytes()
    done = account.run("refresh", "--force")
    assert done.returncode == 2
    assert f"chmod 600 {account.access_file}" in done.stderr
    assert account.access_file.read_bytes() == before
