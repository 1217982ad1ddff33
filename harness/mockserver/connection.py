"""One client connection as plain asyncio: a Protocol that buffers input and reads lines.

The session owns its input buffer (unlike `asyncio.StreamReader`), so it can drop what a
client pipelined after STARTTLS before the handshake (CVE-2011-0411), bound every line, and
time out an idle client.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

HIGH_WATER = 256 * 1024  # buffered input beyond a line limit + this pauses reading


class Closed(Exception):
    """The client went away (EOF, reset, TLS error)."""


class LineTooLong(Exception):
    """A line over the limit; it has been read and dropped up to its end."""


class Connection(asyncio.Protocol):
    """Transport, input buffer and write flow control; `serve` runs once connected."""

    def __init__(self, serve: Callable[[Connection], Coroutine[Any, Any, None]]) -> None:
        self._serve = serve
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self._buffer = bytearray()
        self._eof = False
        self._paused = False
        self._limit = HIGH_WATER
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False

    # ---- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.task is None:  # not again after STARTTLS
            self.task = asyncio.get_running_loop().create_task(self._serve(self))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > self._limit + HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def _wake(self) -> None:
        if self._data_waiter is not None and not self._data_waiter.done():
            self._data_waiter.set_result(None)

    # ---- reading -------------------------------------------------------------------------------
    async def _more(self) -> None:
        if self._eof:
            raise Closed("client closed the connection")
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._data_waiter = asyncio.get_running_loop().create_future()
        try:
            await self._data_waiter
        finally:
            self._data_waiter = None

    async def readline(self, limit: int) -> bytes:
        """One line without its CRLF (or bare LF); LineTooLong for one over `limit` bytes."""
        self._limit = limit
        scanned = 0
        while True:
            end = self._buffer.find(b"\n", scanned)
            if end >= 0:
                if end > limit:
                    del self._buffer[: end + 1]
                    raise LineTooLong
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self._buffer) > limit:
                await self._drop_line()
                raise LineTooLong
            scanned = len(self._buffer)
            await self._more()

    async def _drop_line(self) -> None:
        while (end := self._buffer.find(b"\n")) < 0:
            self._buffer.clear()
            await self._more()
        del self._buffer[: end + 1]

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            await self._more()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def discard_input(self) -> int:
        """Drop whatever the client sent that was not read yet; how many bytes that was."""
        dropped = len(self._buffer)
        self._buffer.clear()
        return dropped

    # ---- writing -------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if self.transport is None or self.transport.is_closing():
            raise Closed("connection closed")
        if self._write_paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
            if self.transport.is_closing():
                raise Closed("connection closed")

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        """Server side of STARTTLS on this connection (unread input is the caller's to drop)."""
        assert self.transport is not None
        self._paused = False
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(
                self.transport, self, context, server_side=True, ssl_handshake_timeout=timeout
            )
        except (ssl.SSLError, ConnectionError, OSError, TimeoutError) as exc:
            raise Closed(f"TLS handshake failed: {exc}") from exc
        if transport is None:
            raise Closed("TLS handshake failed: connection closed")
        self.transport = transport

    def close(self, abort: bool = False) -> None:
        if self.transport is not None:
            if abort:
                self.transport.abort()
            elif not self.transport.is_closing():
                self.transport.close()
