"""Fixtures for the mock mail server tests: provider, CA, validator, mailbox, servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.mockserver import IntrospectionValidator, Mailbox, MailServerController, TestCA
from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.mailclients import PASSWORD, USER, ServerFactory


@pytest.fixture(scope="session")
def ca() -> Iterator[TestCA]:
    test_ca = TestCA()
    yield test_ca
    test_ca.cleanup()


@pytest.fixture
def provider() -> Iterator[MockOAuthProvider]:
    with MockOAuthProvider() as p:
        yield p


@pytest.fixture
def tokens(provider: MockOAuthProvider) -> dict[str, str]:
    good = provider.mint_token(USER)["access_token"]
    expired = provider.mint_token(USER)["access_token"]
    provider.expire(expired)
    other = provider.mint_token("bob@example.com")["access_token"]
    noscope = provider.mint_token(USER, scope="openid")["access_token"]
    return {
        "good": good,
        "expired": expired,
        "bad": "not-a-token",
        "other": other,
        "noscope": noscope,
    }


@pytest.fixture
def validator(provider: MockOAuthProvider) -> IntrospectionValidator:
    cid, secret = provider.resource_credentials
    return IntrospectionValidator(provider.introspection_url, cid, secret, required_scope="mail")


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox.generate(7, 4000, seed=3)


@pytest.fixture
def server(
    ca: TestCA, validator: IntrospectionValidator, mailbox: Mailbox
) -> Iterator[ServerFactory]:
    """`server("imap", tls="starttls", **options)` -> a started controller, stopped at teardown."""
    started: list[MailServerController] = []

    def make(protocol: str, **options: Any) -> MailServerController:
        options.setdefault("validator", validator)
        options.setdefault("mailbox", mailbox)
        options.setdefault("passwords", {USER: PASSWORD})
        options.setdefault("ca", ca)
        controller = MailServerController(protocol, **options).start()
        started.append(controller)
        return controller

    yield make
    for controller in started:
        controller.stop()
        assert controller.errors == [], controller.errors  # no session crashed
