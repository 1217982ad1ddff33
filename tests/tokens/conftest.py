"""Fixtures: a live MockOAuthProvider and an account config pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.tokens_cli import Account


@pytest.fixture
def provider() -> Iterator[MockOAuthProvider]:
    with MockOAuthProvider(device_interval=1) as p:
        yield p
    assert p.errors == [], "the mock provider hit an internal error"


@pytest.fixture
def account(tmp_path: Path, provider: MockOAuthProvider) -> Account:
    acct = Account(tmp_path, provider)
    acct.write_config()
    return acct
