"""IMAP wire syntax: command tokenizer (atoms, quoted strings, literals, lists), sequence sets."""

from __future__ import annotations

import re

Token = str | bytes | list["Token"]  # atom (str), string (bytes), parenthesised list

LITERAL_AT_END = re.compile(rb"\{(\d+)(\+?)\}$")
_ATOM_STOP = b' ()\r\n"'


class ParseError(Exception):
    pass


def tokenize(data: bytes) -> list[Token]:
    """Tokens of a complete command (literals already inline as `{n}\\r\\n<n bytes>`)."""
    tokens, pos = _parse(data, 0, nested=False)
    if pos != len(data):
        raise ParseError("unbalanced parentheses")
    return tokens


def _parse(data: bytes, pos: int, *, nested: bool) -> tuple[list[Token], int]:
    out: list[Token] = []
    n = len(data)
    while pos < n:
        c = data[pos : pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"(":
            inner, pos = _parse(data, pos + 1, nested=True)
            out.append(inner)
        elif c == b")":
            if not nested:
                raise ParseError("unexpected ')'")
            return out, pos + 1
        elif c == b'"':
            value = bytearray()
            pos += 1
            while True:
                if pos >= n:
                    raise ParseError("unterminated quoted string")
                ch = data[pos]
                if ch == 0x5C:  # backslash
                    if pos + 1 >= n:
                        raise ParseError("bad escape")
                    value.append(data[pos + 1])
                    pos += 2
                elif ch == 0x22:
                    pos += 1
                    break
                elif ch in (0x0D, 0x0A):
                    raise ParseError("CR/LF in quoted string")
                else:
                    value.append(ch)
                    pos += 1
            out.append(bytes(value))
        elif c == b"{":
            m = re.match(rb"\{(\d+)\+?\}\r\n", data[pos:])
            if not m:
                raise ParseError("bad literal")
            size = int(m.group(1))
            start = pos + m.end()
            if start + size > n:
                raise ParseError("short literal")
            out.append(data[start : start + size])
            pos = start + size
        else:
            start = pos
            depth = 0
            while pos < n:
                ch = data[pos]
                if ch == 0x5B:  # [
                    depth += 1
                elif ch == 0x5D and depth:
                    depth -= 1
                elif depth == 0 and data[pos : pos + 1] in (b" ", b"(", b")", b'"'):
                    break
                elif ch in (0x0D, 0x0A, 0x00):
                    raise ParseError("control character in atom")
                pos += 1
            if depth:
                raise ParseError("unbalanced brackets")
            out.append(data[start:pos].decode("utf-8", "replace"))
    if nested:
        raise ParseError("unbalanced parentheses")
    return out, pos


def text(token: Token) -> str:
    """An astring as text (atom or string)."""
    if isinstance(token, list):
        raise ParseError("expected a string, got a list")
    return token if isinstance(token, str) else token.decode("utf-8", "replace")


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sequence_set(spec: str, numbers: list[int]) -> list[int]:
    """Members of `numbers` (ascending sequence numbers or UIDs) selected by `spec`.

    For sequence numbers, `numbers` is 1..N and a number beyond N is an error; for UIDs,
    non-existent UIDs are silently skipped (RFC 3501 6.4.8).
    """
    if not spec or not re.fullmatch(r"(\d+|\*)(:(\d+|\*))?(,(\d+|\*)(:(\d+|\*))?)*", spec):
        raise ParseError(f"invalid sequence set {spec!r}")
    top = numbers[-1] if numbers else 0
    wanted: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        lo_s, _, hi_s = part.partition(":")
        lo = top if lo_s == "*" else int(lo_s)
        hi = lo if not hi_s else (top if hi_s == "*" else int(hi_s))
        if lo > hi:
            lo, hi = hi, lo
        if lo == 0 and "*" not in part:
            raise ParseError("invalid sequence number 0")
        ranges.append((lo, hi))
    for lo, hi in ranges:
        for number in numbers:
            if lo <= number <= hi:
                wanted.add(number)
    return [n for n in numbers if n in wanted]


def check_sequence_numbers(spec: str, count: int) -> None:
    """Sequence numbers must exist (dovecot: "Invalid messageset")."""
    for part in spec.split(","):
        for value in part.split(":"):
            if value != "*" and int(value) > count:
                raise ParseError("invalid messageset")
            if value == "*" and count == 0:
                raise ParseError("invalid messageset (mailbox is empty)")
