"""Fixtures for the mock mail server tests: provider, CA, servers, raw conversations."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.mockserver import IntrospectionValidator, Mailbox, MailServerController, TestCA
from harness.mockserver.oauth_provider import MockOAuthProvider

USER = "alice@example.com"
PASSWORD = "s3cret pass"


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str, port: int = 143) -> bytes:
    return f"n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


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


ServerFactory = Callable[..., MailServerController]


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


class Raw:
    """A line-oriented client for exact conversations (what real clients send, byte for byte)."""

    def __init__(self, port: int, context: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock: socket.socket = context.wrap_socket(sock) if context else sock
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self) -> bytes:
        data = self.file.readline()
        if not data:
            raise EOFError("server closed the connection")
        return data.rstrip(b"\r\n")

    def send(self, data: bytes | str) -> None:
        self.sock.sendall((data.encode() if isinstance(data, str) else data) + b"\r\n")

    def ask(self, data: bytes | str) -> bytes:
        self.send(data)
        return self.line()

    def starttls(self, context: ssl.SSLContext) -> None:
        self.file.close()
        self.sock = context.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()
