"""`check`: real XOAUTH2/OAUTHBEARER logins against the mock IMAP/POP3 server (RFC 7662)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.mockserver.controller import MailServerController
from harness.mockserver.oauth_provider import MockOAuthProvider
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import IntrospectionValidator
from tests.tokens.conftest import Account


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
