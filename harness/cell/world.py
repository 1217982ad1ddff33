"""The host side of a cell: mock OAuth2 provider, mock mail server, mailbox, token refresher."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import paths
from harness.cell.log import CellLog
from harness.cell.mail import USER, seed_messages
from harness.cell.model import Cell
from harness.cell.refresher import Refresher
from harness.mockserver.controller import MailServerController
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.oauth_provider import MockOAuthProvider
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import IntrospectionValidator


@dataclass
class World:
    """The host side of a cell: provider, server, mailbox, refresher, scratch dir."""

    tmp: Path
    provider: MockOAuthProvider
    server: MailServerController
    mailbox: Mailbox
    refresher: Refresher
    ca_path: Path
    tokens: list[str] = field(default_factory=list)
    seeded: list[bytes] = field(default_factory=list)

    def transcript_text(self) -> str:
        return "\n".join(t.text() for t in self.server.transcripts)


@contextlib.contextmanager
def open_world(cell: Cell, clog: CellLog) -> Iterator[World]:
    """Provider, CA, mail server and refresher for `cell`, torn down (logs kept) after."""
    with tempfile.TemporaryDirectory(prefix="fmh-cell-", dir=paths.cache_dir()) as tmp_name:
        tmp = Path(tmp_name)
        ca = TestCA(tmp / "ca")
        seeded = seed_messages(1, 4)
        mailbox = Mailbox(seeded)
        with MockOAuthProvider() as provider:
            grant = provider.mint_token(USER, scope="mail")
            refresher = Refresher(tmp, provider, grant["refresh_token"])
            client_id, secret = provider.resource_credentials
            validator = IntrospectionValidator(provider.introspection_url, client_id, secret)
            server = MailServerController(
                cell.protocol, tls=cell.tls_mode, validator=validator, mailbox=mailbox, ca=ca,
            )
            with server:
                world = World(tmp, provider, server, mailbox, refresher, ca.ca_path,
                              seeded=list(seeded))
                try:
                    yield world
                finally:
                    clog.section("refresher", "\n".join(refresher.transcript))
                    clog.section("server transcript", world.transcript_text())
