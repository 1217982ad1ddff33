"""Simple commands answered as soon as their bytes arrive, without a turn of the event loop.

A command read by a session task costs two loop turns: the read callback wakes the task, the
task answers on the next turn. A fetchmail-like client sends one FETCH (or RETR) per message,
so for 5,000 messages those turns were most of the mock's time. While a session waits for its
next command with nothing buffered, `CommandReader` first offers new bytes to the session
(`LineSession.take_commands`), which answers the leading complete simple commands right there
in the read callback, with the very same handlers; what it does not take (other commands,
partial lines, anything after them) is buffered for the task as usual, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, cast


class CommandReader(asyncio.StreamReader):
    """A StreamReader that lets `take` answer commands before bytes are buffered."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit, loop=loop)
        self.take: Callable[[bytes], bytes] | None = None  # returns what it did not consume

    def feed_data(self, data: bytes) -> None:  # type: ignore[override]  # always bytes
        # Only with nothing buffered: a partial line already waiting must be read first.
        buffered = self._buffer  # type: ignore[attr-defined]
        if self.take is not None and not buffered and self.exception() is None:
            data = self.take(data)
            if not data:
                return
        super().feed_data(data)


async def finish(coro: Coroutine[Any, Any, None], awaited: object) -> None:
    """Drive to its end a coroutine that was started outside any task and then suspended on
    `awaited` (a future, or None for a bare yield), the way a task would."""
    while True:
        try:
            if awaited is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait([cast("asyncio.Future[Any]", awaited)])
        except BaseException as exc:  # cancelled (server stopping): the coroutine decides
            try:
                awaited = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            awaited = coro.send(None)
        except StopIteration:
            return
