"""IMAP SEARCH criteria (RFC 3501 6.4.4) as a table of small parsers.

`KEYS[name] = (number of arguments, build)`: `build(args, view)` returns the predicate;
NOT, OR, parenthesised lists and sequence sets nest and are handled by `parse_key`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from harness.mockserver.imapwire import ParseError, Token, sequence_set, text
from harness.mockserver.mailbox import DELETED, SEEN, Message

Predicate = Callable[[int, Message], bool]  # (sequence number, message) -> match
Build = Callable[[list[str], Sequence[Message]], Predicate]

MAX_DEPTH = 64
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FLAGS = {
    "ANSWERED": "\\Answered",
    "DELETED": DELETED,
    "FLAGGED": "\\Flagged",
    "SEEN": SEEN,
    "DRAFT": "\\Draft",
}
_SEQUENCE = re.compile(r"[\d*:,]+")
_DATE = re.compile(r'"?(\d{1,2})-([A-Za-z]{3})-(\d{4})"?')


class SearchError(Exception):
    """A bad SEARCH: the command gets BAD with this text."""


def header_fields(header: bytes, names: set[str], keep: bool) -> bytes:
    """The header lines (with continuations) whose names are (keep) / are not in `names`."""
    out = bytearray()
    take = False
    for line in header.split(b"\r\n")[:-2]:
        if line[:1] in (b" ", b"\t"):
            if take:
                out += line + b"\r\n"
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").upper()
        take = (name in names) == keep
        if take:
            out += line + b"\r\n"
    return bytes(out) + b"\r\n"


def _flag(flag: str, present: bool) -> Build:
    return lambda args, view: lambda i, m: (flag in m.flags) == present


def _size(larger: bool) -> Build:
    def build(args: list[str], view: Sequence[Message]) -> Predicate:
        if not (args[0].isdigit() and args[0].isascii() and len(args[0]) < 19):
            raise SearchError("Invalid size.")
        size = int(args[0])
        return (lambda i, m: m.size > size) if larger else (lambda i, m: m.size < size)

    return build


def _header(field: str) -> Build:
    def build(args: list[str], view: Sequence[Message]) -> Predicate:
        needle = args[0].lower().encode()
        return lambda i, m: needle in header_fields(m.header, {field}, True).lower()

    return build


def _any_header(args: list[str], view: Sequence[Message]) -> Predicate:
    field, needle = args[0].upper(), args[1].lower().encode()

    def match(i: int, m: Message) -> bool:
        found = header_fields(m.header, {field}, True)
        return bool(found.strip()) and needle in found.lower()

    return match


def _contains(whole: bool) -> Build:
    def build(args: list[str], view: Sequence[Message]) -> Predicate:
        needle = args[0].lower().encode()
        return lambda i, m: needle in (m.data if whole else m.text).lower()

    return build


def parse_date(value: str) -> tuple[int, int, int]:
    m = _DATE.fullmatch(value)
    if not m or m.group(2).title() not in MONTHS:
        raise SearchError(f"Invalid date {value}")
    return int(m.group(3)), MONTHS.index(m.group(2).title()) + 1, int(m.group(1))


def _date(compare: Callable[[tuple[int, int, int], tuple[int, int, int]], bool]) -> Build:
    def build(args: list[str], view: Sequence[Message]) -> Predicate:
        day = parse_date(args[0])

        def match(i: int, m: Message) -> bool:
            t = time.gmtime(m.internal_date)
            return compare((t.tm_year, t.tm_mon, t.tm_mday), day)

        return match

    return build


def _uids(args: list[str], view: Sequence[Message]) -> Predicate:
    try:
        uids = set(sequence_set(args[0], sorted(m.uid for m in view)))
    except ParseError as exc:
        raise SearchError(str(exc)) from None
    return lambda i, m: m.uid in uids


def _keyword(present: bool) -> Build:
    return lambda args, view: lambda i, m: (args[0] in m.flags) == present


def _always(result: bool) -> Build:
    return lambda args, view: lambda i, m: result


_BEFORE = _date(lambda d, day: d < day)
_ON = _date(lambda d, day: d == day)
_SINCE = _date(lambda d, day: d >= day)

KEYS: dict[str, tuple[int, Build]] = {
    "ALL": (0, _always(True)),
    "OLD": (0, _always(True)),
    "NEW": (0, _always(False)),
    "RECENT": (0, _always(False)),
    **{name: (0, _flag(flag, True)) for name, flag in FLAGS.items()},
    **{"UN" + name: (0, _flag(flag, False)) for name, flag in FLAGS.items()},
    "KEYWORD": (1, _keyword(True)),
    "UNKEYWORD": (1, _keyword(False)),
    "LARGER": (1, _size(larger=True)),
    "SMALLER": (1, _size(larger=False)),
    "UID": (1, _uids),
    **{name: (1, _header(name)) for name in ("FROM", "TO", "CC", "BCC", "SUBJECT")},
    "HEADER": (2, _any_header),
    "BODY": (1, _contains(whole=False)),
    "TEXT": (1, _contains(whole=True)),
    "BEFORE": (1, _BEFORE),
    "SENTBEFORE": (1, _BEFORE),
    "ON": (1, _ON),
    "SENTON": (1, _ON),
    "SINCE": (1, _SINCE),
    "SENTSINCE": (1, _SINCE),
}


def parse(tokens: list[Token], view: Sequence[Message], depth: int = 0) -> Predicate:
    """All criteria of `tokens` (ANDed)."""
    preds: list[Predicate] = []
    pos = 0
    while pos < len(tokens):
        pred, pos = parse_key(tokens, pos, view, depth)
        preds.append(pred)
    if not preds:
        raise SearchError("Missing SEARCH criteria.")
    if len(preds) == 1:
        return preds[0]
    return lambda i, m: all(p(i, m) for p in preds)


def parse_key(
    tokens: list[Token], pos: int, view: Sequence[Message], depth: int
) -> tuple[Predicate, int]:
    """One criterion starting at `pos`; returns it and the position after it."""
    if depth > MAX_DEPTH:
        raise SearchError("SEARCH criteria nested too deeply.")
    token = tokens[pos]
    if isinstance(token, list):
        return parse(token, view, depth + 1), pos + 1
    key = _text(token).upper()
    if key == "NOT":
        if pos + 1 >= len(tokens):
            raise SearchError("Missing argument for SEARCH NOT.")
        inner, after = parse_key(tokens, pos + 1, view, depth + 1)
        return (lambda i, m: not inner(i, m)), after
    if key == "OR":
        if pos + 2 >= len(tokens):
            raise SearchError("Missing arguments for SEARCH OR.")
        left, after = parse_key(tokens, pos + 1, view, depth + 1)
        if after >= len(tokens):
            raise SearchError("Missing arguments for SEARCH OR.")
        right, after = parse_key(tokens, after, view, depth + 1)
        return (lambda i, m: left(i, m) or right(i, m)), after
    if key in KEYS:
        arity, build = KEYS[key]
        args = [_text(t) for t in tokens[pos + 1 : pos + 1 + arity]]
        if len(args) < arity:
            raise SearchError(f"Missing argument for SEARCH {key}.")
        return build(args, view), pos + 1 + arity
    if _SEQUENCE.fullmatch(key):
        try:
            numbers = set(sequence_set(key, range(1, len(view) + 1)))
        except ParseError as exc:
            raise SearchError(str(exc)) from None
        return (lambda i, m: i in numbers), pos + 1
    raise SearchError(f"Unknown SEARCH key {key}.")


def _text(token: Token) -> str:
    try:
        return text(token)
    except ParseError as exc:
        raise SearchError(f"Invalid SEARCH argument: {exc}") from None
