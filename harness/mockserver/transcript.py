"""Per-session transcripts with secrets redacted (tokens, passwords, SASL responses)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REDACTED = "<redacted>"


@dataclass
class Transcript:
    """What one session said. `lines` are "C: ..." (client) / "S: ..." (server) strings,
    "-- ..." notes; `violations` lists what the client did against its protocol's rules
    (also noted in `lines`), e.g. a wrong answer to the SASL error challenge."""

    protocol: str
    peer: str
    started: float = field(default_factory=time.time)
    lines: list[str] = field(default_factory=list)
    path: Path | None = None
    violations: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, text: str) -> None:
        self._add("C: " + text)

    def server(self, text: str) -> None:
        self._add("S: " + text)

    def note(self, text: str) -> None:
        self._add("-- " + text)

    def violation(self, text: str) -> None:
        self.violations.append(text)
        self._add("-- client violation: " + text)

    def _add(self, line: str) -> None:
        if self.path is None:
            self.lines.append(line)  # atomic under the GIL; the lock orders file writes
            return
        with self._lock:
            self.lines.append(line)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(f"[{self.protocol} {self.peer}] {line}\n")

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def __contains__(self, needle: str) -> bool:
        return needle in self.text()


def show(data: bytes, limit: int = 300) -> str:
    """A printable, bounded rendering of a line for the transcript."""
    text = data.decode("utf-8", "backslashreplace")
    if len(text) > limit:
        return f"{text[:limit]}...[{len(data)} bytes]"
    return text
