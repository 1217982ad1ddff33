"""`MockStack`: the mock OAuth2 provider, a validator that introspects at it, a test CA and
the mock mail servers, started and stopped as one.

    with MockStack(("imap", "smtp"), tls="starttls", mailbox=box) as stack:
        token = stack.mint_token()["access_token"]
        stack.servers["imap"].port, stack.ca_path, stack.outbox.snapshot()

Used by `fetchmail-harness serve`, the end-to-end cells and the tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import ConfigError
from harness.mockserver.controller import SESSIONS, MailServerController
from harness.mockserver.faults import Faults
from harness.mockserver.mailbox import Mailbox, Outbox
from harness.mockserver.oauth_provider import DEFAULT_USER, MockOAuthProvider
from harness.mockserver.profiles import Profile
from harness.mockserver.tls import TestCA
from harness.mockserver.transcript import Transcript
from harness.mockserver.validators import BearerValidator, IntrospectionValidator


class MockStack:
    """Provider + validator + CA + one `MailServerController` per protocol.

    `tls` is one mode for all servers or a mapping per protocol ("implicit", "starttls",
    "plain"); `ports` likewise (0 or absent = a free port). IMAP and POP3 share `mailbox`;
    SMTP stores what it accepts in `outbox`. The servers introspect at the stack's provider
    unless given another `validator`. `server_options` go to every controller
    (passwords, allow_login, mechanisms, idle_timeout, max_line, ...).
    """

    def __init__(
        self,
        protocols: Iterable[str] = ("imap", "pop3", "smtp"),
        *,
        tls: str | Mapping[str, str] = "starttls",
        ports: Mapping[str, int] | None = None,
        profile: str | Profile = "dovecot",
        faults: Faults | str | None = None,
        mailbox: Mailbox | None = None,
        outbox: Outbox | None = None,
        user: str = DEFAULT_USER,
        scope: str = "mail",
        ca_dir: str | Path | None = None,
        validator: BearerValidator | None = None,
        transcript_path: str | Path | None = None,
        **server_options: Any,
    ) -> None:
        self.protocols = tuple(protocols)
        unknown = [p for p in self.protocols if p not in SESSIONS]
        if unknown or not self.protocols:
            raise ConfigError(f"unknown protocol(s) {unknown}; use {', '.join(SESSIONS)}")
        self._tls = {
            p: tls if isinstance(tls, str) else tls.get(p, "plain") for p in self.protocols
        }
        self._ports = dict(ports or {})
        self.profile = profile
        self.faults = faults if isinstance(faults, Faults) else Faults.parse(faults)
        self.mailbox = mailbox if mailbox is not None else Mailbox()
        self.outbox = outbox if outbox is not None else Outbox()
        self.user = user
        self.scope = scope
        self._ca_dir = ca_dir
        self._transcript_path = transcript_path
        self._options = server_options
        self.provider = MockOAuthProvider()
        self.ca: TestCA | None = None
        self.validator: BearerValidator | None = validator
        self.servers: dict[str, MailServerController] = {}
        self._exit = contextlib.ExitStack()

    def start(self) -> MockStack:
        try:
            self._exit.enter_context(self.provider)
            if self.validator is None:
                self.validator = IntrospectionValidator(
                    self.provider.introspection_url,
                    *self.provider.resource_credentials,
                    required_scope=self.scope,
                )
            if any(mode != "plain" for mode in self._tls.values()):
                self.ca = TestCA(self._ca_dir)
                if self._ca_dir is None:
                    self._exit.callback(self.ca.cleanup)
            for protocol in self.protocols:
                self.servers[protocol] = self._exit.enter_context(
                    MailServerController(
                        protocol,
                        port=self._ports.get(protocol, 0),
                        tls=self._tls[protocol],
                        ca=self.ca,
                        validator=self.validator,
                        mailbox=self.mailbox,
                        outbox=self.outbox,
                        profile=self.profile,
                        faults=self.faults,
                        transcript_path=self._transcript_path,
                        **self._options,
                    )
                )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._exit.close()

    def __enter__(self) -> MockStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- conveniences --------------------------------------------------------------------------
    def __getitem__(self, protocol: str) -> MailServerController:
        return self.servers[protocol]

    def mint_token(self, user: str | None = None, scope: str | None = None) -> dict[str, Any]:
        """A grant (access_token, refresh_token, ...) the servers accept for `user`."""
        return self.provider.mint_token(user or self.user, scope=scope or self.scope)

    @property
    def ca_path(self) -> Path | None:
        return self.ca.ca_path if self.ca else None

    @property
    def transcripts(self) -> list[Transcript]:
        return [t for server in self.servers.values() for t in server.transcripts]

    def transcript_text(self) -> str:
        return "\n".join(t.text() for t in self.transcripts)

    @property
    def errors(self) -> list[str]:
        """Unexpected exceptions inside any session (should stay empty)."""
        return [e for server in self.servers.values() for e in server.errors]
