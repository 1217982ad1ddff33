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
from harness.mockserver.stack import MockStack


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
        seeded = seed_messages(1, 4)
        mailbox = Mailbox(seeded)
        with MockStack((cell.protocol,), tls=cell.tls_mode, mailbox=mailbox, user=USER,
                       ca_dir=tmp / "ca") as stack:
            grant = stack.mint_token()
            refresher = Refresher(tmp, stack.provider, grant["refresh_token"])
            assert stack.ca_path is not None
            world = World(tmp, stack.provider, stack[cell.protocol], mailbox, refresher,
                          stack.ca_path, seeded=list(seeded))
            try:
                yield world
            finally:
                clog.section("refresher", "\n".join(refresher.transcript))
                clog.section("server transcript", world.transcript_text())
