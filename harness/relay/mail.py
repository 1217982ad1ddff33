"""The mail a relay cell submits, and what must arrive: the same bytes after one Received:.

A message that already has Date: and Message-ID: gets nothing else from postfix's cleanup:
the submission server must receive exactly one `Received: by <myhostname> (Postfix, ...)`
header (possibly folded) followed by the submitted bytes with LF line ends turned into CRLF —
headers, dot-leading lines, trailing blanks, long lines and the last line alike.
"""

from __future__ import annotations

import re

_RECEIVED = re.compile(rb"Received: by (?P<host>\S+) \(Postfix, from userid \d+\)\r\n"
                       rb"(?:[ \t][^\r\n]*\r\n)*")
_HOP = re.compile(rb"Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*")  # a relay's own


def message(cell: str, number: int, sender: str, recipient: str) -> bytes:
    """A 7-bit message whose body exercises SMTP transparency and line handling."""
    long_line = "x" * 900
    return (
        f"Date: Tue, 01 Dec 2026 12:00:{number:02d} +0000\n"
        f"Message-ID: <relay-{number}.{cell}@example.com>\n"
        f"From: Sender {number} <{sender}>\n"
        f"To: <{recipient}>\n"
        f"Subject: relay cell {cell} message {number}\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        f"Message {number} relayed by postfix with XOAUTH2.\n"
        ".a line that starts with a dot (SMTP dot-stuffing must undo itself)\n"
        ".\n"
        "trailing blanks stay   \n"
        "\ttab-led line\n"
        f"{long_line}\n"
        "\n"
        "last line\n"
    ).encode("ascii")


def message_id(data: bytes) -> str | None:
    m = re.search(rb"(?im)^Message-ID:\s*(<[^>\r\n]+>)", data)
    return m.group(1).decode() if m else None


def difference(submitted: bytes, received: bytes, myhostname: str, hops: int = 0) -> str | None:
    """None when `received` is `submitted` as relayed; else where it first differs. `hops`:
    Received: headers of further relays (Dovecot's submission) above postfix's."""
    for _ in range(hops):
        hop = _HOP.match(received)
        if hop is None:
            return f"no Received: header of the relay above postfix's: {received[:120]!r}"
        received = received[hop.end():]
    m = _RECEIVED.match(received)
    if m is None:
        return f"does not start with postfix's Received: header: {received[:120]!r}"
    if m["host"].decode() != myhostname:
        return f"Received: by {m['host'].decode()}, not {myhostname}"
    want = submitted.replace(b"\n", b"\r\n")
    got = received[m.end():]
    if got == want:
        return None
    at = next((i for i in range(min(len(want), len(got))) if want[i] != got[i]),
              min(len(want), len(got)))
    return (f"after the Received: header, byte {at} differs (want {want[at:at + 40]!r}, got "
            f"{got[at:at + 40]!r}; lengths {len(want)} / {len(got)})")
