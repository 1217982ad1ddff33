"""`MailServerController`: an IMAP, POP3 or SMTP submission mock server on an asyncio loop
in a thread.

with MailServerController("imap", tls="starttls", validator=v, mailbox=box) as server:
    imaplib.IMAP4("127.0.0.1", server.port) ...
server.transcripts[0].text()   # what was said, secrets redacted
server.outbox.snapshot()       # SMTP: the messages accepted
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.mockserver.connection import Connection
from harness.mockserver.faults import Faults
from harness.mockserver.imap import ImapSession
from harness.mockserver.mailbox import Mailbox, Outbox
from harness.mockserver.pop3 import Pop3Session
from harness.mockserver.profiles import Profile, get_profile
from harness.mockserver.sasl import MECHANISMS
from harness.mockserver.session import Disconnect, LineSession, ServerConfig
from harness.mockserver.smtp import SmtpSession
from harness.mockserver.tls import TestCA
from harness.mockserver.transcript import Transcript
from harness.mockserver.validators import BearerValidator

log = logging.getLogger(__name__)

SESSIONS: dict[str, type[LineSession]] = {
    "imap": ImapSession,
    "pop3": Pop3Session,
    "smtp": SmtpSession,
}
TLS_MODES = ("implicit", "starttls", "plain")
DEFAULT_MAX_LINE = 256 * 1024  # SASL-IR lines with 16 KB+ tokens fit easily
DEFAULT_IDLE_TIMEOUT = 1800.0  # RFC 3501's 30 minutes; a silent client is dropped after it


class MailServerController:
    """Threaded mock mail server. `start()` returns once the socket listens (`ready` is set)."""

    def __init__(
        self,
        protocol: str = "imap",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: str = "plain",
        validator: BearerValidator | None = None,
        mailbox: Mailbox | None = None,
        outbox: Outbox | None = None,
        profile: str | Profile = "dovecot",
        passwords: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca: TestCA | None = None,
        faults: Faults | str | None = None,
        allow_login: bool = True,
        mechanisms: tuple[str, ...] | None = None,
        scope: str | None = None,
        max_line: int = DEFAULT_MAX_LINE,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        require_auth: bool = True,
        transcript_path: str | Path | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        if protocol not in SESSIONS:
            raise ConfigError(f"unknown protocol {protocol!r}; one of {', '.join(SESSIONS)}")
        if tls not in TLS_MODES:
            raise ConfigError(f"unknown tls mode {tls!r}; one of {', '.join(TLS_MODES)}")
        if idle_timeout < 0:
            raise ConfigError("idle_timeout must be >= 0 (0 = never)")
        self.protocol = protocol
        self.host = host
        self._port = port
        self.tls = tls
        self.ca = ca
        if tls != "plain" and ssl_context is None:
            if self.ca is None:
                self.ca = TestCA()
            ssl_context = self.ca.server_context()
        the_profile = get_profile(profile)
        mechs = tuple(m.upper() for m in (mechanisms or the_profile.mechanisms))
        unknown = [m for m in mechs if m not in MECHANISMS]
        if unknown:
            raise ConfigError(f"unknown SASL mechanism(s) {', '.join(unknown)}")
        self.mailbox = mailbox if mailbox is not None else Mailbox()
        self.outbox = outbox if outbox is not None else Outbox()
        self.faults = faults if isinstance(faults, Faults) else Faults.parse(faults)
        self.config = ServerConfig(
            protocol=protocol,
            tls=tls,
            ssl_context=ssl_context,
            validator=validator,
            passwords=dict(passwords or {}),
            mailbox=self.mailbox,
            profile=the_profile,
            faults=self.faults,
            allow_login=allow_login,
            mechanisms=mechs,
            scope=scope or getattr(validator, "required_scope", None) or the_profile.default_scope,
            max_line=max_line,
            idle_timeout=idle_timeout,
            transcript_path=Path(transcript_path) if transcript_path else None,
            outbox=self.outbox,
            require_auth=require_auth,
        )
        self.ready_timeout = ready_timeout
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._error: BaseException | None = None
        self.errors: list[str] = []  # unexpected exceptions inside sessions (should stay empty)

    # ---- public --------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if not self.ready.is_set():
            raise HarnessError("mail server not started")
        return self._port

    @property
    def transcripts(self) -> list[Transcript]:
        return self.config.transcripts

    @property
    def ca_path(self) -> Path | None:
        return self.ca.ca_path if self.ca else None

    def start(self) -> MailServerController:
        self._thread = threading.Thread(target=self._run, name=f"mock-{self.protocol}", daemon=True)
        self._thread.start()
        if not self.ready.wait(self.ready_timeout) or self._error is not None:
            self.stop()
            raise HarnessError(f"mock {self.protocol} server failed to start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> MailServerController:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- the loop thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported through start()
            self._error = exc
            self.ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        implicit = self.config.ssl_context if self.tls == "implicit" else None
        self._server = await self._loop.create_server(
            lambda: Connection(self._session),
            self.host,
            self._port,
            ssl=implicit,
            ssl_handshake_timeout=10 if implicit else None,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self.ready.set()
        await self._stop.wait()
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _session(self, conn: Connection) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = SESSIONS[self.protocol](self.config, conn)
        try:
            await session.serve()
            session.transcript.note("session ended")
        except Disconnect as exc:
            session.transcript.note(f"disconnected: {exc}")
        except asyncio.CancelledError:
            session.transcript.note("server stopping")
        except Exception as exc:  # a bug: record it, keep serving others
            log.exception("mock %s session crashed", self.protocol)
            self.errors.append(repr(exc))
            session.transcript.note(f"internal error: {exc!r}")
        finally:
            self._tasks.discard(task)
            session.write_pending()  # e.g. a BYE queued just before Disconnect
            conn.close()
