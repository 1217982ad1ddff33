"""What IMAP and POP3 sessions share: line I/O with limits, faults, transcripts, TLS, SASL."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.mockserver.fastlane import finish
from harness.mockserver.faults import Faults
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.profiles import Profile
from harness.mockserver.sasl import (
    MECHANISMS,
    AuthContext,
    AuthResult,
    Mechanism,
    Outcome,
    SaslAborted,
    SaslProtocolError,
)
from harness.mockserver.transcript import REDACTED, Transcript, show
from harness.mockserver.validators import BearerValidator, Validation, Verdict

log = logging.getLogger(__name__)

CRLF = b"\r\n"
READ_CHUNK = 64 * 1024
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
    strict_sasl_answers: bool = True
    transcripts: list[Transcript] = field(default_factory=list)
    transcript_path: Path | None = None


class LineTooLong(Exception):
    pass


class Disconnect(Exception):
    """End the session now (client gone, fault injected, BYE sent)."""


class LineSession:
    """One client connection. Subclasses implement `run()` with `cmd_<VERB>` handlers."""

    protocol = ""

    def __init__(
        self, config: ServerConfig, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.config = config
        self.reader = reader
        self.writer = writer
        self.faults = config.faults
        self.profile = config.profile
        peer = writer.get_extra_info("peername")
        self.transcript = Transcript(
            self.protocol, f"{peer[0]}:{peer[1]}" if peer else "?", path=config.transcript_path
        )
        config.transcripts.append(self.transcript)
        self.tls_active = config.tls == "implicit"
        self.user: str | None = None
        self.commands = 0
        self._out: list[bytes] = []  # queued output, see send()
        small_reads(writer.transport)
        # Fast lane (see fastlane.py): never with faults, which must behave line by line.
        self._lane_open = config.faults == Faults()
        self.hostile = bool(config.faults.malformed or config.faults.overlong)  # hostile_prelude
        self._waiting_for_command = False
        self._unfinished: asyncio.Future[None] | None = None  # a fast command that suspended

    async def run(self) -> None:
        raise NotImplementedError

    # ---- output --------------------------------------------------------------------------------
    # Replies are queued and leave in one write when the session next reads (or flushes): one
    # segment per response, so a client's delayed ACK never meets a half-sent reply.
    async def send(self, line: bytes | str, *, log_as: str | None = None) -> None:
        data = line.encode() if isinstance(line, str) else line
        if self.faults.delay:
            await self.pause()
        self.transcript.server(log_as if log_as is not None else show(data))
        self._out.append(data)
        self._out.append(CRLF)

    async def send_raw(self, data: bytes, note: str) -> None:
        """Bytes that are part of a bigger response (literal bodies); noted, not copied."""
        self.transcript.server(note)
        self._out.append(data)

    def send_chunks(self, chunks: list[bytes], note: str) -> None:
        """One response in pieces (e.g. a FETCH line and its literal), queued without copying."""
        self.transcript.server(note)
        self._out.extend(chunks)

    async def pause(self) -> None:
        """The `delay` fault: what is queued goes out now, the next line after the delay."""
        await self.flush()
        await asyncio.sleep(self.faults.delay)

    def write_pending(self) -> None:
        """Hand queued output to the transport (without waiting for it to drain)."""
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self.writer.write(data)

    async def flush(self) -> None:
        self.write_pending()
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise Disconnect(str(exc)) from exc

    async def hostile_prelude(self, untagged: bytes) -> None:
        """Faults that precede every reply (when `hostile`): a garbage line, an overlong line."""
        if self.faults.malformed:
            await self.send(untagged + b'\x00\xff\xfe ((( garbage "unterminated {99')
        if self.faults.overlong:
            pad = b"x" * self.faults.overlong
            await self.send(untagged + pad, log_as=f"<{len(pad)} byte overlong line>")

    async def cut_connection(self, why: str) -> None:
        self.transcript.note(f"fault: {why}")
        await self.flush()
        self.writer.transport.abort()
        raise Disconnect(why)

    # ---- input ---------------------------------------------------------------------------------
    async def read_line(self) -> bytes:
        """One line without CRLF; LineTooLong after discarding the rest; Disconnect on EOF."""
        await self.flush()
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raise Disconnect("client closed the connection") from exc
        except asyncio.LimitOverrunError as exc:
            await self._discard(exc.consumed)
            raise LineTooLong from exc
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            raise Disconnect(str(exc)) from exc
        return line[:-2] if line.endswith(CRLF) else line[:-1]

    async def _discard(self, consumed: int) -> None:
        try:
            while True:
                await self.reader.readexactly(consumed)
                try:
                    await self.reader.readuntil(b"\n")
                    return
                except asyncio.LimitOverrunError as again:
                    consumed = again.consumed
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            raise Disconnect("client closed the connection") from exc

    async def read_exactly(self, n: int) -> bytes:
        await self.flush()
        try:
            return await self.reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            raise Disconnect("client closed the connection") from exc

    async def next_command_line(self) -> bytes:
        """`read_line` for the first line of a command: the fast lane may answer meanwhile."""
        self._waiting_for_command = True
        try:
            line = await self.read_line()
        except LineTooLong:
            self._waiting_for_command = False
            await self._settle()  # its reply comes after the unfinished command's
            raise
        except BaseException:  # the session ends (client gone, server stopping)
            self._waiting_for_command = False
            if self._unfinished is not None:
                self._unfinished.cancel()
                self._unfinished = None
            raise
        self._waiting_for_command = False
        await self._settle()
        return line

    # ---- fast lane -----------------------------------------------------------------------------
    fast_verbs: frozenset[bytes] = frozenset()  # never read more input nor change `state`

    def is_fast(self, line: bytes) -> bool:
        raise NotImplementedError

    async def dispatch(self, line: bytes) -> None:
        raise NotImplementedError

    def take_commands(self, data: bytes) -> bytes:
        """New bytes while the task waits in `next_command_line` with nothing buffered: answer
        the leading complete fast commands now; return the rest for the task."""
        if not (self._lane_open and self._waiting_for_command) or self._unfinished is not None:
            return data
        transport = self.writer.transport
        high_water = transport.get_write_buffer_limits()[1]
        pos = 0
        try:
            while transport.get_write_buffer_size() < high_water and not transport.is_closing():
                end = data.find(b"\n", pos)
                if end < 0 or end - pos > self.config.max_line:
                    break
                line = data[pos : end - 1] if data[end - 1 : end] == b"\r" else data[pos:end]
                if not self.is_fast(line):
                    break
                pos = end + 1
                self.commands += 1
                if not self._answer_now(line):
                    break
        finally:
            self.write_pending()
        return data[pos:]

    def _answer_now(self, line: bytes) -> bool:
        """Run the command's handler here; False if it has not finished (or failed)."""
        coro = self.dispatch(line)
        try:
            awaited = coro.send(None)
        except StopIteration:
            return True
        except Exception as exc:  # the task ends the session as if it had run it
            self.reader.set_exception(exc)
            return False
        self._unfinished = asyncio.ensure_future(finish(coro, awaited))
        self._unfinished.add_done_callback(self._unfinished_done)
        return False

    def _unfinished_done(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.reader.set_exception(task.exception())  # type: ignore[arg-type]

    async def _settle(self) -> None:
        """Let a fast command that suspended finish before the task goes on."""
        task, self._unfinished = self._unfinished, None
        if task is not None:
            try:
                await asyncio.wait([task])
            except BaseException:  # cancelled: the server is stopping
                task.cancel()
                raise
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    # ---- TLS -----------------------------------------------------------------------------------
    async def start_tls(self) -> None:
        assert self.config.ssl_context is not None
        await self.flush()
        try:
            await self.writer.start_tls(self.config.ssl_context)
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            raise Disconnect(f"TLS handshake failed: {exc}") from exc
        self.tls_active = True
        self.transcript.note("TLS started")

    # ---- credentials ---------------------------------------------------------------------------
    def check_password(self, user: str, password: str) -> bool:
        expected = self.config.passwords.get(user)
        return expected is not None and expected == password

    async def validate_bearer(self, user: str, token: str) -> Validation:
        validator = self.config.validator
        if validator is None:
            return Validation(Verdict.INVALID, "no bearer validator configured")
        try:
            return await asyncio.to_thread(validator.validate, user, token)
        except Exception as exc:  # a broken user validator must not kill the server
            log.warning("bearer validator raised: %s", exc)
            return Validation(Verdict.UNAVAILABLE, f"validator raised {exc!r}")

    def offered_mechanisms(self) -> list[str]:
        return [m for m in self.config.mechanisms if m in MECHANISMS]

    # ---- SASL ----------------------------------------------------------------------------------
    async def challenge(self, data: bytes) -> bytes:
        """Conversation.challenge: `+ base64`, then one client line (decoded)."""
        if self.faults.bad_base64:
            await self.send(b"+ !!not*base64%%" + data[:8].hex().encode())
        else:
            await self.send(b"+ " + base64.b64encode(data))
        try:
            line = await self.read_line()
        except LineTooLong:
            self.transcript.client("<overlong SASL response>")
            raise SaslProtocolError("SASL response too long") from None
        self.transcript.client(REDACTED if line.strip() else "")
        return decode_sasl(line)

    async def run_mechanism(self, name: str, initial: bytes | None) -> AuthResult:
        mechanism: Mechanism = MECHANISMS[name]
        ctx = AuthContext(
            conversation=self,
            validate_bearer=self.validate_bearer,
            check_password=self.check_password,
            profile=self.profile,
            scope=self.config.scope,
            strict_answers=self.config.strict_sasl_answers,
        )
        if self.faults.endless_continuations:
            for _ in range(ENDLESS_ROUNDS):
                await self.send(b"+ ")
                await self.read_line()
            await self.cut_connection("endless continuations exhausted")
        try:
            return await mechanism.authenticate(ctx, initial)
        except SaslAborted:
            return AuthResult(Outcome.ABORTED, reason="client aborted")
        except SaslProtocolError as exc:
            return AuthResult(Outcome.MALFORMED, reason=str(exc))


def small_reads(transport: asyncio.BaseTransport) -> None:
    """Read plain TCP in 64 KiB chunks, not asyncio's 256 KiB: a buffer that big is above
    glibc's mmap threshold, so every command cost an mmap, an mremap and an munmap."""
    if isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = READ_CHUNK  # type: ignore[attr-defined]


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
        raise SaslProtocolError("invalid base64 in SASL response") from None
