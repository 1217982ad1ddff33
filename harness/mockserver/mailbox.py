"""Shared mailbox state: messages with stable UIDs and flags, seeded from disk or generated.

One `Mailbox` is shared by every session of a controller (and by the test that made it), so a
test can look at `seen_uids()`, `deleted_uids()` and `expunged` after a client has run.
"""

from __future__ import annotations

import hashlib
import mailbox as stdlib_mailbox
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError

SEEN = "\\Seen"
DELETED = "\\Deleted"
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")

_BARE_LF = re.compile(rb"(?<!\r)\n")


def to_crlf(data: bytes) -> bytes:
    """Normalise line ends to CRLF and end with one (what IMAP/POP3 put on the wire)."""
    data = _BARE_LF.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


@dataclass
class Message:
    uid: int
    data: bytes
    flags: set[str] = field(default_factory=set)
    internal_date: float = field(default_factory=time.time)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def header(self) -> bytes:
        """Header block including the blank line that ends it (RFC 3501 BODY[HEADER])."""
        end = self.data.find(b"\r\n\r\n")
        return self.data if end < 0 else self.data[: end + 4]

    @property
    def text(self) -> bytes:
        end = self.data.find(b"\r\n\r\n")
        return b"" if end < 0 else self.data[end + 4 :]

    @property
    def uidl(self) -> str:
        return hashlib.sha1(b"%d:" % self.uid + self.data).hexdigest()[:20]


class Mailbox:
    """INBOX: an ordered list of messages. All access goes through one lock."""

    def __init__(self, messages: Iterable[bytes] = (), uid_validity: int = 1) -> None:
        self.lock = threading.RLock()
        self.uid_validity = uid_validity
        self.messages: list[Message] = []
        self.expunged: list[Message] = []
        self.next_uid = 1
        for data in messages:
            self.add(data)

    def add(self, data: bytes, flags: Iterable[str] = ()) -> Message:
        with self.lock:
            msg = Message(self.next_uid, to_crlf(data), set(flags))
            self.next_uid += 1
            self.messages.append(msg)
            return msg

    def snapshot(self) -> list[Message]:
        with self.lock:
            return list(self.messages)

    def expunge(self, uids: Iterable[int]) -> list[Message]:
        """Remove messages by UID; they are kept in `expunged` for inspection."""
        wanted = set(uids)
        with self.lock:
            gone = [m for m in self.messages if m.uid in wanted]
            self.messages = [m for m in self.messages if m.uid not in wanted]
            self.expunged.extend(gone)
            return gone

    def by_uid(self, uid: int) -> Message | None:
        with self.lock:
            return next((m for m in self.messages if m.uid == uid), None)

    def seen_uids(self) -> set[int]:
        with self.lock:
            return {m.uid for m in self.messages + self.expunged if SEEN in m.flags}

    def deleted_uids(self) -> set[int]:
        """Marked \\Deleted or already expunged."""
        with self.lock:
            return {m.uid for m in self.messages + self.expunged if DELETED in m.flags} | {
                m.uid for m in self.expunged
            }

    def __len__(self) -> int:
        with self.lock:
            return len(self.messages)

    # ---- seeding -------------------------------------------------------------------------------
    @classmethod
    def generate(cls, count: int, size: int = 2048, seed: int = 0) -> Mailbox:
        """`count` deterministic messages of about `size` bytes each (at least the header)."""
        return cls(generate_message(i, size, seed) for i in range(1, count + 1))

    @classmethod
    def from_path(cls, path: str | Path) -> Mailbox:
        """A maildir (cur/new/tmp), an mbox file, or a directory with one file per message."""
        path = Path(path)
        if path.is_file():
            box = stdlib_mailbox.mbox(str(path), create=False)
            try:
                return cls(box.get_bytes(key) for key in box.iterkeys())
            finally:
                box.close()
        if not path.is_dir():
            raise ConfigError(f"mailbox {path}: no such file or directory")
        if (path / "cur").is_dir() and (path / "new").is_dir():
            md = stdlib_mailbox.Maildir(str(path), create=False)
            keys = sorted(md.keys(), key=lambda k: (md.get_message(k).get_date(), k))
            return cls(md.get_bytes(k) for k in keys)
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        return cls(p.read_bytes() for p in files)


def generate_message(index: int, size: int = 2048, seed: int = 0) -> bytes:
    """A deterministic RFC 5322 message; the body includes a dot-stuffing case and long lines."""
    digest = hashlib.sha256(b"%d/%d" % (seed, index)).hexdigest()
    header = (
        f"From: Sender {index} <sender{index}@example.org>\r\n"
        f"To: user@example.com\r\n"
        f"Subject: Test message {index} [{digest[:8]}]\r\n"
        f"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        f"Message-ID: <{digest[:16]}.{index}@example.org>\r\n"
        f"\r\n"
    ).encode()
    body = bytearray(b".leading dot line\r\n..two dots\r\n")
    n = 0
    while len(header) + len(body) < size:
        chunk = hashlib.sha256(b"%s:%d" % (digest.encode(), n)).hexdigest()
        body += (chunk * 2).encode() + b"\r\n"
        n += 1
    data = header + bytes(body)
    if len(data) > size > len(header) + 34:
        data = data[: size - 2].rstrip(b"\r") + b"\r\n"
    return data


@dataclass(frozen=True)
class Submission:
    """One message the mock SMTP submission server accepted, byte-exact after dot-unstuffing."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    user: str | None  # who authenticated (None: the server did not require it)
    mechanism: str | None
    tls: bool


class Outbox:
    """What the SMTP sessions of a controller accepted, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Submission] = []

    def add(self, submission: Submission) -> None:
        with self.lock:
            self.messages.append(submission)

    def snapshot(self) -> list[Submission]:
        with self.lock:
            return list(self.messages)

    def __len__(self) -> int:
        with self.lock:
            return len(self.messages)
