"""`check`: real XOAUTH2/OAUTHBEARER logins against the mock IMAP/POP3 server (RFC 7662)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.mockserver.controller import MailServerController
from harness.mockserver.oauth_provider import MockOAuthProvider
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import IntrospectionValidator
from tests.helpers.smtp_server import SmtpServer
from tests.helpers.tokens_cli import Account


@pytest.fixture(scope="module")
def ca() -> Iterator[TestCA]:
    test_ca = TestCA()
    yield test_ca
    test_ca.cleanup()


def _server(
    provider: MockOAuthProvider, protocol: str, tls: str, ca: TestCA
) -> MailServerController:
    validator = IntrospectionValidator(
        provider.introspection_url, *provider.resource_credentials, required_scope="mail"
    )
    return MailServerController(protocol, tls=tls, validator=validator, ca=ca)


@pytest.mark.parametrize(
    ("protocol", "tls", "scheme"),
    [
        ("imap", "starttls", "imap"),
        ("imap", "implicit", "imaps"),
        ("pop3", "starttls", "pop3"),
        ("pop3", "implicit", "pop3s"),
    ],
)
@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_check_logs_in(
    account: Account,
    provider: MockOAuthProvider,
    ca: TestCA,
    protocol: str,
    tls: str,
    scheme: str,
    mechanism: str,
) -> None:
    grant = account.seed()
    with _server(provider, protocol, tls, ca) as server:
        url = f"{scheme}://127.0.0.1:{server.port}"
        ok = account.run("check", url, "--mechanism", mechanism, "--ca-file", str(ca.ca_path))
        assert ok.returncode == 0, ok.stderr
        assert "succeeded" in ok.stderr
        if mechanism == "xoauth2":  # without our CA the server certificate is not trusted
            untrusted = account.run("check", url)
            assert untrusted.returncode == 6 and "certificate" in untrusted.stderr.lower()
        # a dead token is refused by the server (via introspection)
        provider.revoke(grant["refresh_token"])
        refused = account.run("check", url, "--mechanism", mechanism, "--ca-file", str(ca.ca_path))
        assert refused.returncode == 6, refused.stderr
        assert "authentication failed" in refused.stderr
        # the error challenge was acknowledged as the mechanism requires (empty line for
        # XOAUTH2, %x01 for OAUTHBEARER), so the server's final word is a clean failure
        final = "[AUTHENTICATIONFAILED]" if protocol == "imap" else "-ERR [AUTH]"
        assert final in refused.stderr, refused.stderr
        assert server.errors == []


def test_check_plain_only_to_loopback(account: Account, provider: MockOAuthProvider) -> None:
    account.seed()
    with _server(provider, "imap", "plain", TestCA()) as server:
        done = account.run("check", f"imap://127.0.0.1:{server.port}", "--plain")
        assert done.returncode == 0, done.stderr
    remote = account.run("check", "imap://mail.example.com", "--plain")
    assert remote.returncode == 2 and "loopback" in remote.stderr
    bad = account.run("check", "ftp://127.0.0.1")
    assert bad.returncode == 2 and "SCHEME" in bad.stderr


@pytest.mark.parametrize(("scheme", "implicit"), [("submission", False), ("smtps", True)])
@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_check_smtp(
    account: Account,
    provider: MockOAuthProvider,
    ca: TestCA,
    scheme: str,
    implicit: bool,
    mechanism: str,
) -> None:
    def validate(user: str, token: str) -> bool:
        claims = provider.handle_introspect({"token": token}, provider.resource_credentials)
        return bool(claims["active"]) and claims["username"] == user

    grant = account.seed()
    with SmtpServer(validate, ca.server_context(), implicit) as server:
        url = f"{scheme}://127.0.0.1:{server.port}"
        ok = account.run("check", url, "--mechanism", mechanism, "--ca-file", str(ca.ca_path))
        assert ok.returncode == 0, ok.stderr
        assert "235" in ok.stderr
        wrong_user = account.run(
            "check", url, "--mechanism", mechanism, "--ca-file", str(ca.ca_path), "--user", "x@y"
        )
        assert wrong_user.returncode == 6 and "535" in wrong_user.stderr
        provider.revoke(grant["refresh_token"])
        refused = account.run("check", url, "--mechanism", mechanism, "--ca-file", str(ca.ca_path))
        assert refused.returncode == 6 and "535" in refused.stderr


def test_check_defaults_to_imap_server(
    account: Account, provider: MockOAuthProvider, ca: TestCA
) -> None:
    account.seed()
    with _server(provider, "imap", "implicit", ca) as server:
        account.write_config(imap_server=f"127.0.0.1:{server.port}")
        done = account.run("check", "--ca-file", str(ca.ca_path))
        assert done.returncode == 0, done.stderr
    account.write_config()
    missing = account.run("check")
    assert missing.returncode == 2 and "imap_server" in missing.stderr
