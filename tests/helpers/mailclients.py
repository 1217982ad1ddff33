"""Talking to the mock mail server as a client would: SASL strings, a raw line client."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Callable

from harness.mockserver import MailServerController

USER = "alice@example.com"
PASSWORD = "s3cret pass"


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str, port: int = 143) -> bytes:
    return f"n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


ServerFactory = Callable[..., MailServerController]


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
