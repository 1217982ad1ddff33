"""Matrix progress: a live status block on a terminal, one plain line per event otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from harness.cell.result import CellResult
from harness.matrix.reports import MARKS


class Progress:
    """Feeds on run_matrix events; thread-safe (cells report from worker threads)."""

    def __init__(self, total: int, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.total = total
        self.done = 0
        self.counts = {k: 0 for k in MARKS}
        self.active: dict[str, float] = {}  # name -> start time (builds and cells)
        self._lock = threading.Lock()
        self._drawn = 0  # lines of the live block currently on screen
        self._started = time.monotonic()
        self._stop = threading.Event()
        if self.live:  # keep the clocks of long builds moving between events
            threading.Thread(target=self._tick, name="progress", daemon=True).start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self._drawn and not self._stop.is_set():
                    self._redraw(None)

    def __call__(self, kind: str, name: str, result: CellResult | None) -> None:
        with self._lock:
            if kind in ("build-start", "cell-start"):
                self.active[("build " if kind == "build-start" else "") + name] = time.monotonic()
            elif kind == "build-done":
                self.active.pop("build " + name, None)
            elif kind == "cell-done" and result is not None:
                self.active.pop(name, None)
                self.done += 1
                self.counts[result.outcome] += 1
            line = self._line(kind, name, result)
            if self.live:
                self._redraw(line)
            elif line:
                print(line, file=self.stream, flush=True)

    def _line(self, kind: str, name: str, result: CellResult | None) -> str | None:
        stamp = f"[{self.done}/{self.total}]"
        if kind == "build-start":
            return f"{stamp} building {name}"
        if kind == "build-done":
            return f"{stamp} build ready {name}"
        if kind == "cell-start":
            return None if self.live else f"{stamp} running {name}"
        if kind == "cell-done" and result is not None:
            extra = " (cached)" if result.cached else f" ({result.duration:.1f}s)"
            reason = f": {result.reason}" if result.reason else ""
            return f"{stamp} {MARKS[result.outcome]} {result.outcome:5} {name}{extra}{reason}"
        return None

    def _redraw(self, line: str | None) -> None:
        out = self.stream
        if self._drawn:
            out.write(f"\x1b[{self._drawn}F\x1b[J")  # up to the block's start, clear below
        if line:
            out.write(line + "\n")  # finished events scroll up above the live block
        now = time.monotonic()
        status = " ".join(f"{MARKS[k]} {n}" for k, n in self.counts.items())
        block = [f"── {self.done}/{self.total} done · {status} · {now - self._started:.0f}s"]
        block += [f"   ⏳ {n} ({now - t:.0f}s)" for n, t in sorted(self.active.items())]
        out.write("\n".join(block) + "\n")
        out.flush()
        self._drawn = len(block)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self.live and self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
                self._drawn = 0
            self.stream.flush()
