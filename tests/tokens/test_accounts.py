"""Several accounts and a check that checks (issue 11 §5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.mockserver.controller import MailServerController
from harness.mockserver.oauth_provider import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    MockOAuthProvider,
)
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import IntrospectionValidator
from tests.helpers.half_server import REFUSAL, HalfServer
from tests.helpers.smtp_server import SmtpServer
from tests.helpers.tokens_cli import Account, run_cli

REFRESHES = "token:refresh_token"


def _sections(tmp_path: Path, provider: MockOAuthProvider, names: list[str]) -> Path:
    """One config, shared keys on top, one [section] per account (each seeded)."""
    text = (
        "# shared by every account below\n"
        f"client_id = {DEFAULT_CLIENT_ID}\nclient_secret = {DEFAULT_CLIENT_SECRET}\n"
        f"auth_url = {provider.authorize_url}\ntoken_url = {provider.token_url}\n"
        "scope = mail\nretries = 0\n"
    )
    for name in names:
        grant = provider.mint_token(f"{name}@example.com")
        refresh = tmp_path / f"{name}.refresh"
        refresh.write_text(grant["refresh_token"] + "\n")
        refresh.chmod(0o600)
        text += (
            f"\n[{name}]\nuser = {name}@example.com\nrefresh_token_file = {refresh}\n"
            f"access_token_file = {tmp_path / name}.token\n"
        )
    path = tmp_path / "accounts.conf"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_one_config_with_sections(tmp_path: Path, provider: MockOAuthProvider) -> None:
    config = _sections(tmp_path, provider, ["alice", "bob"])
    done = run_cli("-c", str(config), "refresh")
    assert done.returncode == 0, done.stderr
    assert provider.count(REFRESHES) == 2
    for name in ("alice", "bob"):
        token = (tmp_path / f"{name}.token").read_text().strip()
        claims = provider.handle_introspect({"token": token}, provider.resource_credentials)
        assert claims["username"] == f"{name}@example.com"
    status = run_cli("-c", str(config), "status")
    assert (
        f"{config} [alice]: active" in status.stdout and f"{config} [bob]: active" in status.stdout
    )
    one = run_cli("-c", str(config), "--account", "bob", "refresh", "--force")
    assert one.returncode == 0 and provider.count(REFRESHES) == 3
    both = run_cli("-c", str(config), "token", "--print")
    assert both.returncode == 2 and "--account NAME" in both.stderr
    missing = run_cli("-c", str(config), "--account", "carol", "status")
    assert missing.returncode == 2 and "alice, bob" in missing.stderr


def test_several_configs_one_job(tmp_path: Path, provider: MockOAuthProvider) -> None:
    accounts = []
    for name in ("alice", "bob", "carol"):
        acct = Account(tmp_path, provider, name)
        acct.write_config(user=f"{name}@example.com")
        accounts.append((acct, acct.seed(f"{name}@example.com")))
    args = [a for acct, _ in accounts for a in ("-c", str(acct.config))]
    assert run_cli(*args, "refresh").returncode == 0
    assert provider.count(REFRESHES) == 3
    provider.revoke(accounts[1][1]["refresh_token"])  # bob needs a person
    provider.inject("token", "status", status=503, count=2)  # alice's provider is down
    done = run_cli(*args, "refresh", "--force")
    # the first failure that needs a person wins over the temporary one
    assert done.returncode == 3, done.stderr
    assert f"{accounts[0][0].config}: refresh failed" in done.stderr
    assert f"{accounts[1][0].config}: the provider refused the refresh token" in done.stderr
    carol = accounts[2][0].access_file.read_text().strip()
    assert provider.is_active(carol)  # carol was refreshed all the same
    provider.inject("token", "status", status=503, count=2)  # both of alice's attempts
    only_down = run_cli(
        "-c", str(accounts[0][0].config), "-c", str(accounts[2][0].config), "refresh", "--force"
    )
    assert only_down.returncode == 4, only_down.stderr


def test_accounts_may_not_share_files(tmp_path: Path, provider: MockOAuthProvider) -> None:
    a = Account(tmp_path, provider, "a")
    b = Account(tmp_path, provider, "b")
    a.write_config()
    b.write_config(access_token_file=str(a.access_file))
    done = run_cli("-c", str(a.config), "-c", str(b.config), "refresh")
    assert done.returncode == 2 and "is also the access_token_file" in done.stderr
    assert provider.count("token") == 0


@pytest.fixture(scope="module")
def ca() -> object:
    test_ca = TestCA()
    yield test_ca
    test_ca.cleanup()


@pytest.mark.parametrize(("protocol", "listing"), [("imap", "LIST OK"), ("pop3", "STAT +OK")])
def test_check_lists_after_login(
    account: Account, provider: MockOAuthProvider, ca: TestCA, protocol: str, listing: str
) -> None:
    account.seed()
    validator = IntrospectionValidator(
        provider.introspection_url, *provider.resource_credentials, required_scope="mail"
    )
    with MailServerController(protocol, tls="implicit", validator=validator, ca=ca) as server:
        scheme = "imaps" if protocol == "imap" else "pop3s"
        done = account.run(
            "check", f"{scheme}://127.0.0.1:{server.port}", "--ca-file", str(ca.ca_path)
        )
    assert done.returncode == 0, done.stderr
    assert listing in done.stderr


@pytest.mark.parametrize(("protocol", "scheme"), [("imap", "imap"), ("pop3", "pop3")])
def test_check_catches_a_login_that_fails_later(
    account: Account, protocol: str, scheme: str
) -> None:
    account.seed()
    with HalfServer(protocol) as server:
        done = account.run("check", f"{scheme}://127.0.0.1:{server.port}", "--plain")
    assert done.returncode == 6, done.stderr
    assert "authentication succeeded but" in done.stderr and REFUSAL in done.stderr
    assert ("LIST" if protocol == "imap" else "STAT") in server.commands


def test_check_smtp_ehlo_after_auth(
    account: Account, provider: MockOAuthProvider, ca: TestCA
) -> None:
    account.seed()
    with SmtpServer(
        lambda user, token: True, ca.server_context(), True, fail_after_auth=True
    ) as server:
        done = account.run(
            "check", f"smtps://127.0.0.1:{server.port}", "--ca-file", str(ca.ca_path)
        )
    assert done.returncode == 6, done.stderr
    assert "authentication succeeded but EHLO" in done.stderr and "421" in done.stderr
