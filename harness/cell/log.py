"""The per-cell log: sections of text, flushed to disk as they come."""

from __future__ import annotations

import threading
from pathlib import Path


class CellLog:
    """The per-cell log: sections of text, flushed to disk as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        self._lock = threading.Lock()

    def section(self, title: str, text: str = "") -> None:
        with self._lock, self.path.open("a", encoding="utf-8", errors="replace") as fh:
            fh.write(f"\n===== {title}\n{text}")
            if text and not text.endswith("\n"):
                fh.write("\n")
