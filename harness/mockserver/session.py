"""What IMAP, POP3 and SMTP sessions share: a command table per class, bounded line input
with an idle timeout, queued output, injected faults, STARTTLS, and the SASL conversation."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from harness.mockserver.connection import Closed, Connection, LineTooLong
from harness.mockserver.faults import Faults
from harness.mockserver.mailbox import Mailbox, Outbox
from harness.mockserver.profiles import Profile
from harness.mockserver.sasl import SaslAborted, SaslBadBase64
from harness.mockserver.transcript import REDACTED, Transcript, show
from harness.mockserver.validators import BearerValidator, Validation, Verdict

__all__ = ["CRLF", "Disconnect", "LineSession", "LineTooLong", "ServerConfig", "command"]

log = logging.getLogger(__name__)

CRLF = b"\r\n"
TLS_HANDSHAKE_TIMEOUT = 10.0
ENDLESS_ROUNDS = 100_000  # "endless" continuations stop here (or when the client leaves)


@dataclass
class ServerConfig:
    """Everything a session needs; one per controller, shared by its sessions."""

    protocol: str
    tls: str  # "implicit" | "starttls" | "plain"
    ssl_context: ssl.SSLContext | None
    validator: BearerValidator | None
    passwords: Mapping[str, str]
    mailbox: Mailbox
    profile: Profile
    faults: Faults
    allow_login: bool
    mechanisms: tuple[str, ...]
    scope: str
    max_line: int
    idle_timeout: float  # seconds a client may stay silent; 0 = forever
    transcripts: list[Transcript] = field(default_factory=list)
    transcript_path: Path | None = None
    outbox: Outbox = field(default_factory=Outbox)  # what SMTP sessions accepted
    require_auth: bool = True  # SMTP: MAIL only after AUTH (False: a plain relay sink)


class Disconnect(Exception):
    """End the session now (client gone, fault injected, BYE sent)."""


@dataclass(frozen=True)
class Command:
    handler: Callable[..., Awaitable[None]]
    states: frozenset[str] | None  # None: every state the session can take commands in


F = TypeVar("F", bound=Callable[..., Awaitable[None]])


def command(*verbs: str, states: Iterable[str] | None = None) -> Callable[[F], F]:
    """Declare a handler for `verbs`, allowed in `states` (default: any)."""

    def mark(handler: F) -> F:
        handler.__mock_command__ = (verbs, None if states is None else frozenset(states))  # type: ignore[attr-defined]
        return handler

    return mark


class LineSession:
    """One client connection. Subclasses declare handlers with `@command` and run `serve()`."""

    protocol: ClassVar[str] = ""
    continuation: ClassVar[bytes] = b"+ "  # SASL challenge prefix
    idle_bye: ClassVar[str] = ""  # said before an idle client is dropped
    commands: ClassVar[dict[str, Command]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, Command] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                spec = getattr(attr, "__mock_command__", None)
                if spec is not None:
                    verbs, states = spec
                    table.update((verb, Command(attr, states)) for verb in verbs)
        cls.commands = table

    def __init__(self, config: ServerConfig, conn: Connection) -> None:
        self.config = config
        self.conn = conn
        self.faults = config.faults
        self.profile = config.profile
        peer = conn.transport.get_extra_info("peername") if conn.transport else None
        self.transcript = Transcript(
            self.protocol, f"{peer[0]}:{peer[1]}" if peer else "?", path=config.transcript_path
        )
        config.transcripts.append(self.transcript)
        self.tls_active = config.tls == "implicit"
        self.state = ""
        self.user: str | None = None
        self.commands_seen = 0
        self._out: list[bytes] = []  # queued output, see send()

    async def serve(self) -> None:
        raise NotImplementedError

    def find(self, verb: str) -> tuple[Command | None, bool]:
        """The handler of `verb` and whether the current state allows it."""
        found = self.commands.get(verb)
        return found, found is not None and (found.states is None or self.state in found.states)

    async def after_command(self) -> None:
        self.commands_seen += 1
        if self.faults.disconnect_after and self.commands_seen >= self.faults.disconnect_after:
            await self.cut_connection(f"disconnect after {self.commands_seen} commands")

    # ---- output --------------------------------------------------------------------------------
    # Replies are queued and leave in one write when the session next reads (or flushes).
    async def send(self, line: bytes | str, *, log_as: str | None = None) -> None:
        data = line.encode() if isinstance(line, str) else line
        if self.faults.delay:
            await self.pause()
        self.transcript.server(log_as if log_as is not None else show(data))
        self._out.append(data)
        self._out.append(CRLF)

    def send_chunks(self, chunks: list[bytes], note: str) -> None:
        """One response in pieces (e.g. a FETCH line and its literal), queued without copying."""
        self.transcript.server(note)
        self._out.extend(chunks)

    async def hostile_prelude(self, untagged: bytes) -> None:
        """Faults that precede every reply: a garbage line, an overlong line."""
        if self.faults.malformed:
            await self.send(untagged + b'\x00\xff\xfe ((( garbage "unterminated {99')
        if self.faults.overlong:
            pad = b"x" * self.faults.overlong
            await self.send(untagged + pad, log_as=f"<{len(pad)} byte overlong line>")

    async def pause(self) -> None:
        """The `delay` fault: what is queued goes out now, the next line after the delay."""
        await self.flush()
        await asyncio.sleep(self.faults.delay)

    def write_pending(self) -> None:
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self.conn.write(data)

    async def flush(self) -> None:
        self.write_pending()
        try:
            await self.conn.drain()
        except Closed as exc:
            raise Disconnect(str(exc)) from exc

    async def cut_connection(self, why: str) -> None:
        """What is queued goes out, then the connection is dropped (no FIN handshake)."""
        self.transcript.note(f"fault: {why}")
        with contextlib.suppress(Disconnect):
            await self.flush()
        self.conn.close(abort=True)
        raise Disconnect(why)

    # ---- input ---------------------------------------------------------------------------------
    async def read_line(self, limit: int | None = None) -> bytes:
        """One line without CRLF; LineTooLong after dropping it; Disconnect on EOF or idle."""
        await self.flush()
        return await self._idle_bound(self.conn.readline(limit or self.config.max_line))

    async def read_exactly(self, n: int) -> bytes:
        await self.flush()
        return await self._idle_bound(self.conn.readexactly(n))

    async def _idle_bound(self, reading: Awaitable[bytes]) -> bytes:
        timeout = self.config.idle_timeout or None
        try:
            async with asyncio.timeout(timeout):
                return await reading
        except TimeoutError:
            self.transcript.note(f"idle for {timeout:g} s")
            if self.idle_bye:
                await self.send(self.idle_bye)
                self.write_pending()
            self.conn.close()
            raise Disconnect("idle timeout") from None
        except Closed as exc:
            raise Disconnect(str(exc)) from exc

    # ---- TLS -----------------------------------------------------------------------------------
    async def start_tls(self) -> None:
        """After the "go ahead" reply: drop what was pipelined after the command (it was sent
        in the clear and must not be taken as said inside TLS), then the handshake."""
        assert self.config.ssl_context is not None
        await self.flush()
        dropped = self.conn.discard_input()
        if dropped:
            self.transcript.violation(f"{dropped} bytes pipelined after STARTTLS (discarded)")
        try:
            await self.conn.start_tls(self.config.ssl_context, TLS_HANDSHAKE_TIMEOUT)
        except Closed as exc:
            raise Disconnect(str(exc)) from exc
        self.tls_active = True
        self.transcript.note("TLS started")

    # ---- credentials ---------------------------------------------------------------------------
    def offered_mechanisms(self) -> list[str]:
        return list(self.config.mechanisms)

    def check_password(self, user: str, password: str) -> bool:
        expected = self.config.passwords.get(user)
        return expected is not None and expected == password

    async def validate_bearer(self, user: str, token: str) -> Validation:
        if self.faults.validation_down:
            return Validation(Verdict.UNAVAILABLE, "fault: token validation down")
        validator = self.config.validator
        if validator is None:
            return Validation(Verdict.INVALID, "no bearer validator configured")
        try:
            return await asyncio.to_thread(validator.validate, user, token)
        except Exception as exc:  # a broken user validator must not kill the server
            log.warning("bearer validator raised: %s", exc)
            return Validation(Verdict.UNAVAILABLE, f"validator raised {exc!r}")

    # ---- the SASL conversation (sasl.Conversation) ---------------------------------------------
    async def challenge(self, data: bytes) -> bytes:
        if self.faults.bad_base64:
            await self.send(self.continuation + b"!!not*base64%%" + data[:8].hex().encode())
        else:
            await self.send(self.continuation + base64.b64encode(data))
        return await self.sasl_line()

    async def sasl_line(self) -> bytes:
        """A client's SASL response line, decoded (SaslAborted, SaslBadBase64)."""
        try:
            line = await self.read_line()
        except LineTooLong:
            self.transcript.client("<overlong SASL response>")
            self.check_sasl_size(self.config.max_line + 1)
            raise SaslBadBase64("SASL response too long") from None
        self.transcript.client(REDACTED if line.strip() else "")
        self.check_sasl_size(len(line))
        return decode_sasl(line)

    def check_sasl_size(self, size: int) -> None:
        """The profile's limit on one SASL response: over it, the connection is dropped."""
        limit = self.profile.sasl_response_limit
        if limit and size > limit:
            self.transcript.note(f"SASL response of {size} bytes, over {limit}: dropped")
            self.conn.close(abort=True)
            raise Disconnect("SASL response too large")


def decode_sasl(line: bytes) -> bytes:
    """A client's SASL line: "*" aborts, "" and "=" are empty, otherwise strict base64."""
    text = line.strip()
    if text == b"*":
        raise SaslAborted
    if text in (b"", b"="):
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SaslBadBase64("invalid base64 in SASL response") from None
