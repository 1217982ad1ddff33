"""No reply is trusted (issue 11 §2): the real CLI against a misbehaving mock provider."""

from __future__ import annotations

import json

import pytest

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.tokens_cli import Account, run_cli

REFRESHES = "token:refresh_token"


def _refreshed_once(account: Account) -> bytes:
    account.seed()
    assert account.run("refresh").returncode == 0
    return account.access_file.read_bytes()


def test_trickling_provider_is_cut_off_at_the_deadline(
    account: Account, provider: MockOAuthProvider
) -> None:
    """One byte every 0.5 s: each read is quick, the whole reply would take about two
    minutes, and would then succeed. A per-request deadline ends it as a failure."""
    account.write_config(http_timeout_sec="2", retries="0")
    before = _refreshed_once(account)
    provider.inject("token", "trickle", delay=0.5)
    done = account.run("refresh", "--force")
    assert done.returncode == 4, done.stderr
    assert "did not answer in full within 2 s" in done.stderr
    assert account.access_file.read_bytes() == before
    # the lock was released: the next refresher is not kept waiting
    assert account.run("refresh", "--force").returncode == 0


@pytest.mark.parametrize("client_auth", ["post", "basic"])
@pytest.mark.parametrize("status", [302, 307])
def test_redirects_are_not_followed(
    account: Account, provider: MockOAuthProvider, status: int, client_auth: str
) -> None:
    account.write_config(client_auth=client_auth)
    before = _refreshed_once(account)
    provider.inject("token", "redirect", status=status)
    done = account.run("refresh", "--force")
    assert done.returncode == 4, done.stderr
    assert f"HTTP {status} redirecting to {provider.url}/elsewhere" in done.stderr
    assert provider.count("elsewhere") == 0  # neither the form nor the secret went there
    assert account.access_file.read_bytes() == before
    assert "elsewhere-token" not in account.access_file.read_text()


def test_redirect_on_the_device_endpoint(account: Account, provider: MockOAuthProvider) -> None:
    provider.inject("device", "redirect")
    done = account.run("authorize", "--flow", "device")
    assert done.returncode == 4 and "redirecting" in done.stderr, done.stderr
    assert provider.count("elsewhere") == 0
    assert not account.access_file.exists()


@pytest.mark.parametrize("declared", [True, False])
def test_oversized_reply_is_refused(
    account: Account, provider: MockOAuthProvider, declared: bool
) -> None:
    before = _refreshed_once(account)
    provider.inject("token", "oversized", size=5_000_000, declare_length=declared)
    done = account.run("refresh", "--force")
    assert done.returncode == 4, done.stderr
    assert "1048576" in done.stderr
    assert account.access_file.read_bytes() == before


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"expires_in": "NaN"}, "expires_in"),
        ({"expires_in": "Infinity"}, "expires_in"),
        ({"expires_in": "1e400"}, "expires_in"),
        ({"expires_in": "1" + "0" * 400}, "expires_in"),
        ({"expires_in": "-5"}, "expires_in"),
        ({"expires_in": "0"}, "expires_in"),
        ({"expires_in": "true"}, "expires_in"),
        ({"expires_in": '"soon"'}, "expires_in"),
        ({"access_token": '""'}, "access_token"),
        ({"access_token": "null"}, "access_token"),
        ({"access_token": "42"}, "access_token"),
        ({"access_token": '"two\\nlines"'}, "access_token"),
        ({"access_token": '"with space"'}, "access_token"),
        ({"token_type": '"mac"'}, "token_type"),
        ({"refresh_token": '"two\\nlines"'}, "refresh_token"),
        ({"refresh_token": "[1]"}, "refresh_token"),
    ],
)
def test_malformed_reply_writes_nothing(
    account: Account, provider: MockOAuthProvider, fields: dict[str, str], needle: str
) -> None:
    before = _refreshed_once(account)
    refresh_before = account.refresh_file.read_bytes()
    state_before = account.state_file.read_bytes()
    provider.inject("token", "mangle", fields=fields)
    done = account.run("refresh", "--force")
    assert done.returncode == 4, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert account.access_file.read_bytes() == before
    assert account.refresh_file.read_bytes() == refresh_before
    assert account.state_file.read_bytes() == state_before
    # every later run works
    status = account.run("status")
    assert status.returncode == 0 and "active" in status.stdout, status.stderr
    assert account.run("refresh", "--force").returncode == 0


def test_expires_in_as_a_string_is_accepted(account: Account, provider: MockOAuthProvider) -> None:
    account.seed()
    provider.inject("token", "mangle", fields={"expires_in": '"1800"'})
    done = account.run("refresh")
    assert done.returncode == 0, done.stderr
    sidecar = json.loads(account.state_file.read_text())
    assert sidecar["expires_at"] - sidecar["obtained_at"] == 1800


def test_rotated_refresh_token_is_kept_when_the_access_token_is_unusable(
    account: Account, provider: MockOAuthProvider
) -> None:
    """The provider rotated (and so invalidated) the old refresh token: losing the new one
    would force a re-authorisation."""
    provider.rotate_refresh_tokens = True
    grant = account.seed()
    provider.inject("token", "mangle", fields={"access_token": '""'})
    done = account.run("refresh")
    assert done.returncode == 4, done.stderr
    assert "rotated refresh token was saved" in done.stderr
    saved = account.refresh_file.read_text().strip()
    assert saved != grant["refresh_token"] and provider.refresh_tokens[saved].active
    assert not provider.refresh_tokens[grant["refresh_token"]].active
    assert account.run("refresh").returncode == 0  # with the saved one
    assert provider.is_active(account.access_file.read_text().strip())


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("0", "http_timeout_sec must be > 0"),
        ("nan", "must be a finite number"),
        ("inf", "must be a finite number"),
        ("-1", "must be > 0"),
        ("1e9", "<= 3600"),
    ],
)
def test_bad_http_timeout_is_a_config_error(
    account: Account, provider: MockOAuthProvider, value: str, needle: str
) -> None:
    account.seed()
    account.write_config(http_timeout_sec=value)
    done = account.run("refresh")
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and f"{account.config}:" in done.stderr
    assert provider.count("token") == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_age_sec", "inf"),
        ("refresh_margin_sec", "nan"),
        ("retries", "1.5"),
        ("retries", "-1"),
        ("retry_backoff_sec", "Infinity"),
    ],
)
def test_non_finite_or_bad_numbers_are_config_errors(
    account: Account, key: str, value: str
) -> None:
    account.seed()
    account.write_config(**{key: value})
    done = account.run("refresh")
    assert done.returncode == 2 and key in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_no_op_refresh_imports_neither_requests_nor_filelock(account: Account) -> None:
    account.seed()
    assert account.run("refresh").returncode == 0
    probe = (
        "import sys\n"
        "from tokens.cli import main\n"
        f"code = main(['-q', '-c', {str(account.config)!r}, 'refresh'])\n"
        "print(code, sorted(m for m in ('requests', 'filelock', 'urllib3') if m in sys.modules))\n"
    )
    import subprocess
    import sys

    from tests.helpers.tokens_cli import cli_env

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env(), check=False
    )
    assert done.stdout.split("\n")[0] == "0 []", done.stdout + done.stderr
    plain = subprocess.run(
        [sys.executable, "-c", "import sys, tokens.cli; print('requests' in sys.modules)"],
        capture_output=True,
        text=True,
        env=cli_env(),
        check=False,
    )
    assert plain.stdout.strip() == "False"
    assert run_cli("--version").returncode == 0
