"""IMAP wire syntax: command tokenizer (atoms, quoted strings, literals, lists), sequence sets."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

Token = str | bytes | list["Token"]  # atom (str), string (bytes), parenthesised list

LITERAL_AT_END = re.compile(rb"\{(\d{1,18})(\+?)\}$")
_ATOM_END = b' ()"'  # ends an atom outside [brackets]
# Fast paths (the general loops in _quoted/_atom handle the rest): a quoted string without
# escapes; an atom whose [brackets] do not nest.
_PLAIN_QUOTED = re.compile(rb'"([^"\\\r\n]*)"')
_PLAIN_ATOM = re.compile(rb'[^ ()"\r\n\x00\[]*(?:\[[^\[\]\r\n\x00]*\][^ ()"\r\n\x00\[]*)*')
_LITERAL = re.compile(rb"\{(\d{1,18})\+?\}\r\n")
_SEQUENCE_SET = re.compile(r"(\d{1,18}|\*)(:(\d{1,18}|\*))?(,(\d{1,18}|\*)(:(\d{1,18}|\*))?)*")


MAX_NESTING = 64  # parenthesised lists deeper than this are refused, not recursed into


class ParseError(Exception):
    pass


def tokenize(data: bytes) -> list[Token]:
    """Tokens of a complete command (literals already inline as `{n}\\r\\n<n bytes>`)."""
    tokens, pos = _parse(data, 0, depth=0)
    if pos != len(data):
        raise ParseError("unbalanced parentheses")
    return tokens


def _parse(data: bytes, pos: int, *, depth: int) -> tuple[list[Token], int]:
    if depth > MAX_NESTING:
        raise ParseError("lists nested too deeply")
    nested = depth > 0
    out: list[Token] = []
    n = len(data)
    while pos < n:
        c = data[pos]
        if c == 0x20:  # space
            pos += 1
        elif c == 0x28:  # (
            inner, pos = _parse(data, pos + 1, depth=depth + 1)
            out.append(inner)
        elif c == 0x29:  # )
            if not nested:
                raise ParseError("unexpected ')'")
            return out, pos + 1
        elif c == 0x22:  # "
            m = _PLAIN_QUOTED.match(data, pos)
            if m:
                out.append(m.group(1))
                pos = m.end()
            else:
                value, pos = _quoted(data, pos + 1)
                out.append(value)
        elif c == 0x7B:  # {
            m = _LITERAL.match(data, pos)
            if not m:
                raise ParseError("bad literal")
            size = int(m.group(1))
            start = m.end()
            if start + size > n:
                raise ParseError("short literal")
            out.append(data[start : start + size])
            pos = start + size
        else:
            m = _PLAIN_ATOM.match(data, pos)
            end = m.end() if m else pos
            if end > pos and (end == n or data[end] in _ATOM_END):
                atom = data[pos:end]
                pos = end
            else:
                atom, pos = _atom(data, pos)
            out.append(atom.decode("utf-8", "replace"))
    if nested:
        raise ParseError("unbalanced parentheses")
    return out, pos


def _quoted(data: bytes, pos: int) -> tuple[bytes, int]:
    """A quoted string with escapes, from just after its opening quote."""
    value = bytearray()
    n = len(data)
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
            return bytes(value), pos + 1
        elif ch in (0x0D, 0x0A):
            raise ParseError("CR/LF in quoted string")
        else:
            value.append(ch)
            pos += 1


def _atom(data: bytes, pos: int) -> tuple[bytes, int]:
    """An atom with nested [brackets] (inside which spaces and parentheses are allowed)."""
    start = pos
    depth = 0
    n = len(data)
    while pos < n:
        ch = data[pos]
        if ch == 0x5B:  # [
            depth += 1
        elif ch == 0x5D and depth:
            depth -= 1
        elif depth == 0 and ch in _ATOM_END:
            break
        elif ch in (0x0D, 0x0A, 0x00):
            raise ParseError("control character in atom")
        pos += 1
    if depth:
        raise ParseError("unbalanced brackets")
    return data[start:pos], pos


def text(token: Token) -> str:
    """An astring as text (atom or string)."""
    if isinstance(token, list):
        raise ParseError("expected a string, got a list")
    return token if isinstance(token, str) else token.decode("utf-8", "replace")


def wildcard_match(pattern: str, name: str, delimiter: str = "/") -> bool:
    """LIST pattern matching (RFC 3501 6.3.8: `*` anything, `%` anything but the delimiter),
    as a set of pattern positions advanced once per character: no backtracking, so any
    pattern costs at most len(pattern) * len(name) steps."""
    squeezed: list[str] = []
    for ch in pattern:  # runs of wildcards: "*" wins, "%%" is "%"
        if ch in "*%" and squeezed and squeezed[-1] in "*%":
            squeezed[-1] = "*" if "*" in (ch, squeezed[-1]) else "%"
        else:
            squeezed.append(ch)
    end = len(squeezed)

    def closure(positions: set[int]) -> set[int]:
        return positions | {i + 1 for i in positions if i < end and squeezed[i] in "*%"}

    states = closure({0})
    for ch in name:
        following: set[int] = set()
        for i in states:
            if i == end:
                continue
            want = squeezed[i]
            if want == "*" or (want == "%" and ch != delimiter):
                following.add(i)
            elif want == ch:
                following.add(i + 1)
        states = closure(following)
        if not states:
            return False
    return end in states


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sequence_indexes(spec: str, numbers: Sequence[int]) -> list[int]:
    """Positions (0-based, ascending, unique) in `numbers` of the members selected by `spec`.

    `numbers` are ascending sequence numbers (a `range` is fine) or UIDs; each part of the set
    costs two binary searches, so one FETCH of one message does not walk the whole mailbox.
    """
    if not spec or not _SEQUENCE_SET.fullmatch(spec):
        raise ParseError(f"invalid sequence set {spec[:40]!r}")
    top = numbers[-1] if numbers else 0
    spans: list[tuple[int, int]] = []
    for part in spec.split(","):
        lo_s, _, hi_s = part.partition(":")
        lo = top if lo_s == "*" else int(lo_s)
        hi = lo if not hi_s else (top if hi_s == "*" else int(hi_s))
        if lo > hi:
            lo, hi = hi, lo
        if lo == 0 and "*" not in part:
            raise ParseError("invalid sequence number 0")
        spans.append((bisect_left(numbers, lo), bisect_right(numbers, hi)))
    if len(spans) == 1:
        return list(range(*spans[0]))
    out: list[int] = []
    end = 0
    for start, stop in sorted(spans):
        start = max(start, end)
        if start < stop:
            out.extend(range(start, stop))
            end = stop
    return out


def sequence_set(spec: str, numbers: Sequence[int]) -> list[int]:
    """Members of `numbers` (ascending sequence numbers or UIDs) selected by `spec`.

    For sequence numbers, `numbers` is 1..N and a number beyond N is an error; for UIDs,
    non-existent UIDs are silently skipped (RFC 3501 6.4.8).
    """
    return [numbers[i] for i in sequence_indexes(spec, numbers)]


def check_sequence_numbers(spec: str, count: int) -> None:
    """Sequence numbers must exist (dovecot: "Invalid messageset")."""
    if not _SEQUENCE_SET.fullmatch(spec):
        raise ParseError(f"invalid sequence set {spec[:40]!r}")
    for part in spec.split(","):
        for value in part.split(":"):
            if value != "*" and int(value) > count:
                raise ParseError("invalid messageset")
            if value == "*" and count == 0:
                raise ParseError("invalid messageset (mailbox is empty)")
