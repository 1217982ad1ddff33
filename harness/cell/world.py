"""The host side of a cell: mock OAuth2 provider, mail server (the mock or Dovecot), token
refresher, scratch dir."""

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
from harness.cell.servers import CellServer, DovecotServer, MockServer
from harness.mockserver.oauth_provider import MockOAuthProvider

LONG_TOKEN_BYTES = 9000  # random bytes: a ~12 KB token, a ~16 KB SASL response (O365 >2 KB)
# temporary-failure cells: the provider's introspection answers 503 this many times (the run)
INTROSPECTION_DOWN = 10_000


@dataclass
class World:
    """The host side of a cell: provider, mail server, refresher, scratch dir."""

    tmp: Path
    provider: MockOAuthProvider
    server: CellServer
    refresher: Refresher
    ca_path: Path
    tokens: list[str] = field(default_factory=list)
    seeded: list[bytes] = field(default_factory=list)


@contextlib.contextmanager
def open_world(cell: Cell, clog: CellLog, server_image: str | None = None) -> Iterator[World]:
    """Provider, CA, mail server and refresher for `cell`, torn down (logs kept) after;
    `-dovecot` cells get Dovecot in `server_image` (the host's own without one)."""
    with tempfile.TemporaryDirectory(prefix="fmh-cell-", dir=paths.cache_dir()) as tmp_name:
        tmp = Path(tmp_name)
        seeded = seed_messages(1, 4)
        opened = (_dovecot(cell, tmp, seeded, server_image) if cell.server == "dovecot"
                  else _mock(cell, tmp, seeded))
        with opened as (provider, server, ca_path):
            if cell.long_token:
                provider.access_token_bytes = LONG_TOKEN_BYTES
            grant = provider.mint_token(USER, scope="mail")
            if cell.temp_failure:  # the server cannot validate any token: it says "try later"
                provider.inject("introspect", "status", status=503, count=INTROSPECTION_DOWN)
            refresher = Refresher(tmp, provider, grant["refresh_token"])
            world = World(tmp, provider, server, refresher, ca_path, seeded=list(seeded))
            try:
                yield world
            finally:
                clog.section("refresher", "\n".join(refresher.transcript))
                clog.section(f"{server.name} server record", server.record())


@contextlib.contextmanager
def _mock(cell: Cell, tmp: Path,
          seeded: list[bytes]) -> Iterator[tuple[MockOAuthProvider, CellServer, Path]]:
    from harness.mockserver.mailbox import Mailbox
    from harness.mockserver.stack import MockStack

    mailbox = Mailbox(seeded)
    with MockStack((cell.protocol,), tls=cell.tls_mode, mailbox=mailbox, user=USER,
                   ca_dir=tmp / "ca") as stack:
        assert stack.ca_path is not None
        yield stack.provider, MockServer(stack[cell.protocol], mailbox), stack.ca_path


@contextlib.contextmanager
def _dovecot(cell: Cell, tmp: Path, seeded: list[bytes],
             image: str | None) -> Iterator[tuple[MockOAuthProvider, CellServer, Path]]:
    """Debian's Dovecot in `image` (a container on the host network), or the host's own when
    there is no image, validating tokens at the mock provider's RFC 7662 endpoint."""
    from harness.mockserver.dovecot import DovecotInstance
    from harness.mockserver.tls import TestCA

    ca = TestCA(tmp / "ca")
    with MockOAuthProvider() as provider:
        client_id, secret = provider.resource_credentials
        with DovecotInstance(provider.introspection_url, client_id, secret, USER, seeded,
                             tls=ca, auth_debug=True, image=image) as dovecot:
            yield provider, DovecotServer(dovecot, cell), ca.ca_path
