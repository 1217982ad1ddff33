"""Mail and transcript checks of a cell that need no container: seeds, delivery rule, leaks.

The delivery rule: fetchmail runs with `set invisible` (no Received: header of its own),
`no rewrite` and `stripcr` (the MDA default), so the MDA must receive each message exactly as the
server stores it with CRLF turned into LF: nothing added, removed or reordered.
"""

from __future__ import annotations

import base64

USER = "user@example.com"


# -- seeded mail ----------------------------------------------------------------------------


def _message(n: int, subject: str, body: bytes, extra_headers: bytes = b"") -> bytes:
    head = (
        f"From: Sender {n} <sender{n}@example.org>\r\n"
        f"To: {USER}\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 01 Jan 2024 00:00:{n:02d} +0000\r\n"
        f"Message-ID: <fmh-{n}@example.org>\r\n"
    ).encode() + extra_headers
    return head + b"\r\n" + body


def seed_messages(first: int = 1, count: int = 4) -> list[bytes]:
    """Plain, dot-leading, long-line and binary-ish messages (in turn), CRLF line ends."""
    out = []
    for n in range(first, first + count):
        kind = (n - 1) % 4
        if kind == 0:
            out.append(_message(n, f"plain {n}", b"Hello,\r\n\r\njust text.\r\n-- \r\nsig\r\n"))
        elif kind == 1:
            body = b".\r\n..\r\n.leading dot\r\n..two leading dots\r\n. \r\nend\r\n"
            out.append(_message(n, f"dots {n}", body))
        elif kind == 2:
            long_line = b"".join(b"%05d," % i for i in range(900))  # 5400 bytes, no break
            folded = b"X-Long-Header: " + b" ".join([b"word"] * 40) + b"\r\n\tcontinued\r\n"
            out.append(_message(n, f"long lines {n}", long_line + b"\r\nshort\r\n", folded))
        else:
            binaryish = bytes(b for b in range(1, 256) if b not in (10, 13))
            body = b"8bit: " + binaryish + b"\r\nFrom the start of a line\r\n>From quoted\r\n"
            headers = (b"Content-Type: application/octet-stream\r\n"
                       b"Content-Transfer-Encoding: 8bit\r\n")
            out.append(_message(n, f"binary {n}", body, headers))
    return out


def expected_delivery(original: bytes) -> bytes:
    """What the MDA must receive for a message stored as `original` (see the module doc)."""
    return original.replace(b"\r\n", b"\n")


def message_id(data: bytes) -> str | None:
    for line in data.split(b"\n\n", 1)[0].split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return None


# -- token leak detection -------------------------------------------------------------------


def token_forms(token: str, user: str = USER) -> list[str]:
    """Every form in which `token` could leak: raw, and base64 at each alignment.

    Any base64 text that encodes the token (alone, in a XOAUTH2/OAUTHBEARER string, with or
    without padding, standard or URL-safe) contains one of the three `aligned` encodings.
    """
    raw = token.encode()
    forms = {token}
    for prefix_len in range(3):
        enc = base64.b64encode(b"\0" * prefix_len + raw).decode()
        start = 4 if prefix_len else 0
        middle = enc[start:-4]  # drop the groups mixed with prefix bytes or padding
        if len(middle) >= 16:
            forms.add(middle)
            forms.add(middle.replace("+", "-").replace("/", "_"))
    for sasl in (f"user={user}\x01auth=Bearer {token}\x01\x01",
                 f"n,a={user},\x01auth=Bearer {token}\x01\x01"):
        forms.add(base64.b64encode(sasl.encode()).decode())
    return sorted(forms, key=len)


def find_leaks(text: str, tokens: list[str]) -> list[str]:
    """Descriptions of each token form found in `text`."""
    found = []
    for i, token in enumerate(tokens, 1):
        for form in token_forms(token):
            if form in text:
                kind = "raw" if form == token else "base64"
                found.append(f"token #{i} ({kind} form {form[:6]}...)")
                break
    return found


def auth_attempts(transcript: str, protocol: str) -> tuple[list[str], list[str]]:
    """(SASL mechanisms the client asked for, password-style commands it sent)."""
    mechanisms: list[str] = []
    passwords: list[str] = []
    for line in transcript.splitlines():
        if not line.startswith("C: "):
            continue
        words = line[3:].upper().split()
        if protocol == "imap" and len(words) >= 2:
            if words[1] == "AUTHENTICATE" and len(words) >= 3:
                mechanisms.append(words[2])
            elif words[1] == "LOGIN":
                passwords.append("LOGIN")
        elif protocol == "pop3" and words:
            if words[0] == "AUTH" and len(words) >= 2:
                mechanisms.append(words[1])
            elif words[0] in ("USER", "PASS", "APOP"):
                passwords.append(words[0])
    return mechanisms, passwords
