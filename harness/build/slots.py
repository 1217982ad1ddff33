"""The cores the builds of one run share.

A build runs its steps holding one of `jobs` slots. While it waits for another build
(reuse.Store: the first configure and the first compile of a family) it gives its slot up,
so a waiting build leaves no core idle. Slots go to the earliest build of the run first, and
between its steps a build hands its slot to an earlier one that waits (`checkpoint`): the
builds come out in the order of the run, their cells starting as early as they can.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import threading
from collections.abc import Iterator


class Slots:
    """`count` slots, handed to the waiting build of the lowest rank (its place in the run)."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiting: list[int] = []
        self._changed = threading.Condition()

    def acquire(self, rank: int) -> None:
        with self._changed:
            heapq.heappush(self._waiting, rank)
            while not (self._free and self._waiting[0] == rank):
                self._changed.wait()
            heapq.heappop(self._waiting)
            self._free -= 1
            self._changed.notify_all()  # a slot may be left for the next in line

    def earlier_waiting(self, rank: int) -> bool:
        with self._changed:
            return bool(self._waiting) and self._waiting[0] < rank

    def release(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify_all()


_HELD: contextvars.ContextVar[tuple[Slots, int] | None] = contextvars.ContextVar(
    "build_slot", default=None)


@contextlib.contextmanager
def holding(slots: Slots, rank: int) -> Iterator[None]:
    """Run the body (one build, `rank` in its run) in one of `slots`."""
    slots.acquire(rank)
    token = _HELD.set((slots, rank))
    try:
        yield
    finally:
        _HELD.reset(token)
        slots.release()


@contextlib.contextmanager
def given_up() -> Iterator[None]:
    """While the body waits, the build's slot (if it holds one) serves another build."""
    held = _HELD.get()
    if held is None:
        yield
        return
    slots, rank = held
    slots.release()
    try:
        yield
    finally:
        slots.acquire(rank)


def checkpoint() -> None:
    """Between two steps of a build: an earlier build of the run that waits goes first."""
    held = _HELD.get()
    if held is not None and held[0].earlier_waiting(held[1]):
        with given_up():
            pass
