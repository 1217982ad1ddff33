"""IMAP4rev1 server session: enough for fetchmail, curl, Python's imaplib and common clients."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.mockserver.imapwire import (
    LITERAL_AT_END,
    ParseError,
    Token,
    check_sequence_numbers,
    quote,
    sequence_indexes,
    sequence_set,
    text,
    tokenize,
)
from harness.mockserver.mailbox import DELETED, SEEN, SYSTEM_FLAGS, Message
from harness.mockserver.sasl import AuthResult, Outcome, SaslAborted, SaslProtocolError
from harness.mockserver.session import (
    CRLF,
    Disconnect,
    LineSession,
    LineTooLong,
    ServerConfig,
    decode_sasl,
)
from harness.mockserver.transcript import REDACTED, show

NOT_AUTH, AUTH, SELECTED, LOGOUT = "not-authenticated", "authenticated", "selected", "logout"
ANY = (NOT_AUTH, AUTH, SELECTED)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FETCH_MACROS = {
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
}
_BODY_ITEM = re.compile(r"(BODY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$", re.IGNORECASE)
_TAG = re.compile(r"[!#-'*+,\-./0-9:-z|~]+")
_SIMPLE_ITEMS = {
    "UID",
    "FLAGS",
    "RFC822",
    "RFC822.SIZE",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "INTERNALDATE",
}


class Bad(Exception):
    """Reply `tag BAD <message>`."""


class No(Exception):
    """Reply `tag NO <message>`."""


@dataclass(frozen=True)
class FetchItem:
    name: str  # UID, FLAGS, RFC822, ..., BODY, BODY.PEEK
    section: str = ""
    partial: tuple[int, int | None] | None = None

    @property
    def sets_seen(self) -> bool:
        return self.name in ("BODY", "RFC822", "RFC822.TEXT")


_FETCH_ITEMS_CACHE: dict[object, list[FetchItem]] = {}


def parse_fetch_items(token: Token) -> list[FetchItem]:
    """FETCH items of a request; the same request (fetchmail's, every message) is parsed once."""
    key = token if isinstance(token, str) else tuple(token)
    try:
        cached = _FETCH_ITEMS_CACHE.get(key)
    except TypeError:  # nested lists: not hashable, not cached
        return _parse_fetch_items(token)
    if cached is None:
        cached = _parse_fetch_items(token)
        if len(_FETCH_ITEMS_CACHE) >= 256:
            _FETCH_ITEMS_CACHE.clear()
        _FETCH_ITEMS_CACHE[key] = cached
    return list(cached)


def _parse_fetch_items(token: Token) -> list[FetchItem]:
    names: list[Token] = token if isinstance(token, list) else [token]
    if isinstance(token, str) and token.upper() in FETCH_MACROS:
        names = list(FETCH_MACROS[token.upper()])
    items = []
    for raw in names:
        if not isinstance(raw, str):
            raise Bad("Invalid FETCH item")
        upper = raw.upper()
        if upper in _SIMPLE_ITEMS:
            items.append(FetchItem(upper))
            continue
        m = _BODY_ITEM.match(raw)
        if not m:
            raise Bad(f"Unknown or unsupported FETCH item {raw}")
        partial = None
        if m.group(3) is not None:
            partial = (int(m.group(3)), int(m.group(4)) if m.group(4) is not None else None)
        items.append(FetchItem(m.group(1).upper(), m.group(2), partial))
    if not items:
        raise Bad("Empty FETCH item list")
    return items


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


def section_data(msg: Message, section: str) -> bytes:
    upper = section.upper()
    if upper == "":
        return msg.data
    if upper == "HEADER":
        return msg.header
    if upper in ("TEXT", "1"):
        return msg.text
    m = re.fullmatch(r"HEADER\.FIELDS(\.NOT)?\s*\((.*)\)", upper)
    if m:
        names = {n.strip('"') for n in m.group(2).split()}
        return header_fields(msg.header, names, keep=m.group(1) is None)
    raise Bad(f"Unsupported section [{section}]")


def imap_date(stamp: float) -> str:
    t = time.gmtime(stamp)
    day = f"{t.tm_mday:02d}-{MONTHS[t.tm_mon - 1]}-{t.tm_year}"
    return f"{day} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def parse_search_date(value: str) -> tuple[int, int, int]:
    m = re.fullmatch(r'"?(\d{1,2})-([A-Za-z]{3})-(\d{4})"?', value)
    if not m or m.group(2).title() not in MONTHS:
        raise Bad(f"Invalid date {value}")
    return int(m.group(3)), MONTHS.index(m.group(2).title()) + 1, int(m.group(1))


Predicate = Callable[[int, Message], bool]


class ImapSession(LineSession):
    protocol = "imap"

    def __init__(
        self, config: ServerConfig, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(config, reader, writer)
        self.state = NOT_AUTH
        self.view: list[Message] = []
        self._uids: list[int] | None = None  # UIDs of `view`, built by the first UID command
        self.readonly = False

    # ---- main loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        caps = " ".join(self.capabilities())
        await self.send(f"* OK [CAPABILITY {caps}] {self.profile.imap_greeting}")
        if self.faults.early_disconnect:
            await self.cut_connection("early disconnect after greeting")
        while self.state != LOGOUT:
            try:
                raw = await self.read_command()
            except LineTooLong:
                self.transcript.client("<overlong line>")
                await self.send("* BAD Command line too long")
                continue
            except Bad as exc:
                await self.send(f"* BAD {exc}")
                continue
            self.commands += 1
            await self.dispatch(raw)
            if self.faults.disconnect_after and self.commands >= self.faults.disconnect_after:
                await self.cut_connection(f"disconnect after {self.commands} commands")
        await self.flush()

    async def read_command(self) -> bytes:
        line = await self.next_command_line()
        if not line.endswith(b"}"):  # no literal: the usual case
            return line
        buf = bytearray(line)
        while m := LITERAL_AT_END.search(line):
            size, sync = int(m.group(1)), not m.group(2)
            if len(buf) + size > self.config.max_line * 4:
                if sync:
                    self.transcript.client(show(bytes(buf)))
                    raise Bad("Literal too large")
                await self.send("* BYE Literal too large")
                raise Disconnect("non-synchronising literal too large")
            if sync:
                await self.send("+ OK")
            buf += CRLF + await self.read_exactly(size)
            line = await self.read_line()
            buf += line
        return bytes(buf)

    fast_verbs = frozenset({b"FETCH", b"UID", b"STORE", b"SEARCH", b"NOOP", b"CHECK"})

    def is_fast(self, line: bytes) -> bool:
        head = line.split(b" ", 2)
        return len(head) > 1 and head[1].upper() in self.fast_verbs and not line.endswith(b"}")

    async def dispatch(self, raw: bytes) -> None:
        head = raw.split(b" ", 2)
        tag = head[0].decode("utf-8", "replace")
        if len(head) < 2 or not _TAG.fullmatch(tag):
            self.transcript.client(show(raw))
            await self.send("* BAD Error in IMAP command received by server.")
            return
        verb = head[1].decode("utf-8", "replace").upper()
        self.transcript.client(self._redacted(tag, verb, raw))
        handler = getattr(self, "cmd_" + verb.replace("-", "_"), None) if verb.isalpha() else None
        try:
            if handler is None:
                raise Bad(f"Error in IMAP command {verb}: Unknown command.")
            allowed = getattr(handler, "states", ANY)
            if self.state not in allowed:
                raise Bad(f"Error in IMAP command {verb}: not allowed in state {self.state}.")
            try:
                args = tokenize(head[2]) if len(head) > 2 else []
            except ParseError as exc:
                raise Bad(f"Error in IMAP command {verb}: {exc}") from None
            await handler(tag, args)
        except Bad as exc:
            await self.tagged(tag, "BAD", str(exc))
        except No as exc:
            await self.tagged(tag, "NO", str(exc))

    def _redacted(self, tag: str, verb: str, raw: bytes) -> str:
        if verb != "LOGIN" and verb != "AUTHENTICATE":
            return show(raw)
        parts = raw.split(b" ")
        if verb == "LOGIN" and len(parts) >= 3:
            return f"{tag} LOGIN {show(parts[2].split(b'{')[0])} {REDACTED}"
        if verb == "AUTHENTICATE" and len(parts) >= 4:
            return f"{tag} AUTHENTICATE {show(parts[2])} {REDACTED}"
        return show(raw)

    async def tagged(self, tag: str, status: str, message: str) -> None:
        if self.hostile:
            await self.hostile_prelude(b"* ")
        await self.send(f"{tag} {status} {message}")

    def capabilities(self) -> list[str]:
        caps = ["IMAP4rev1", *self.profile.imap_capabilities]
        if self.state == NOT_AUTH:
            if self.config.tls == "starttls" and not self.tls_active:
                caps.append("STARTTLS")
            if not self.config.allow_login:
                caps.append("LOGINDISABLED")
            caps += [f"AUTH={m}" for m in self.offered_mechanisms()]
        return caps

    # ---- any state -----------------------------------------------------------------------------
    async def cmd_CAPABILITY(self, tag: str, args: list[Token]) -> None:
        await self.send("* CAPABILITY " + " ".join(self.capabilities()))
        await self.tagged(
            tag, "OK", "Pre-login capabilities listed, post-login capabilities have more."
        )

    async def cmd_NOOP(self, tag: str, args: list[Token]) -> None:
        await self.tagged(tag, "OK", "NOOP completed.")

    async def cmd_LOGOUT(self, tag: str, args: list[Token]) -> None:
        await self.send("* BYE Logging out")
        await self.tagged(tag, "OK", "Logout completed.")
        self.state = LOGOUT

    async def cmd_ID(self, tag: str, args: list[Token]) -> None:
        await self.send('* ID ("name" "fetchmail-harness mock")')
        await self.tagged(tag, "OK", "ID completed.")

    async def cmd_XYZZY(self, tag: str, args: list[Token]) -> None:
        await self.send("* OK Nothing happens.")
        await self.tagged(tag, "OK", "XYZZY completed.")

    # ---- not authenticated ---------------------------------------------------------------------
    async def cmd_STARTTLS(self, tag: str, args: list[Token]) -> None:
        if self.config.tls != "starttls" or self.tls_active:
            raise Bad("STARTTLS not available.")
        await self.tagged(tag, "OK", "Begin TLS negotiation now.")
        await self.start_tls()

    async def cmd_LOGIN(self, tag: str, args: list[Token]) -> None:
        if not self.config.allow_login:
            raise No("[PRIVACYREQUIRED] LOGIN is disabled on this server.")
        if len(args) != 2:
            raise Bad("Error in IMAP command LOGIN: expected user and password.")
        user, password = text(args[0]), text(args[1])
        if not self.check_password(user, password):
            raise No(self.profile.imap_login_failed)
        await self.logged_in(tag, user)

    async def cmd_AUTHENTICATE(self, tag: str, args: list[Token]) -> None:
        if not args or len(args) > 2 or not isinstance(args[0], str):
            raise Bad("Error in IMAP command AUTHENTICATE: expected a mechanism.")
        mech = args[0].upper()
        if mech not in self.offered_mechanisms():
            raise No(f"Unsupported authentication mechanism {mech}.")
        initial = None
        if len(args) == 2:
            if not isinstance(args[1], str):
                raise Bad("Invalid initial response.")
            try:
                initial = decode_sasl(args[1].encode())
            except (SaslAborted, SaslProtocolError):
                raise Bad("Invalid base64 data in initial response.") from None
        result = await self.run_mechanism(mech, initial)
        await self.auth_reply(tag, result)

    async def auth_reply(self, tag: str, result: AuthResult) -> None:
        self.transcript.note(f"auth {result.outcome.value}: {result.reason}")
        if result.outcome is Outcome.OK and result.user is not None:
            await self.logged_in(tag, result.user)
        elif result.outcome is Outcome.UNAVAILABLE:
            raise No(self.profile.unavailable(self.profile.imap_unavailable))
        elif result.outcome is Outcome.ABORTED:
            raise Bad(self.profile.imap_aborted)
        elif result.outcome is Outcome.MALFORMED:
            status, message = self.profile.imap_bad_base64
            raise (Bad if status == "BAD" else No)(message)
        elif result.outcome is Outcome.PROTOCOL:
            raise Bad(self.profile.imap_bad_response)
        else:
            raise No(self.profile.imap_auth_failed)

    async def logged_in(self, tag: str, user: str) -> None:
        self.user = user
        self.state = AUTH
        if self.profile.capability_in_ok:
            caps = " ".join(self.capabilities())
            await self.tagged(tag, "OK", f"[CAPABILITY {caps}] {self.profile.imap_logged_in}")
        else:
            await self.tagged(tag, "OK", self.profile.imap_logged_in)

    cmd_STARTTLS.states = (NOT_AUTH,)  # type: ignore[attr-defined]
    cmd_LOGIN.states = (NOT_AUTH,)  # type: ignore[attr-defined]
    cmd_AUTHENTICATE.states = (NOT_AUTH,)  # type: ignore[attr-defined]

    # ---- authenticated -------------------------------------------------------------------------
    def _inbox(self, args: list[Token]) -> None:
        if not args:
            raise Bad("Missing mailbox name.")
        if text(args[0]).upper() != "INBOX":
            raise No("[NONEXISTENT] Mailbox doesn't exist: " + text(args[0]))

    async def _select(self, tag: str, args: list[Token], readonly: bool) -> None:
        self._inbox(args)
        self.view, self._uids = self.config.mailbox.snapshot(), None
        self.readonly = readonly
        self.state = SELECTED
        box = self.config.mailbox
        await self.send("* FLAGS (" + " ".join(SYSTEM_FLAGS) + ")")
        perm = "" if readonly else " ".join(SYSTEM_FLAGS) + " \\*"
        await self.send(f"* OK [PERMANENTFLAGS ({perm})] Flags permitted.")
        await self.send(f"* {len(self.view)} EXISTS")
        await self.send("* 0 RECENT")
        unseen = next((i for i, m in enumerate(self.view, 1) if SEEN not in m.flags), None)
        if unseen is not None:
            await self.send(f"* OK [UNSEEN {unseen}] First unseen.")
        await self.send(f"* OK [UIDVALIDITY {box.uid_validity}] UIDs valid")
        await self.send(f"* OK [UIDNEXT {box.next_uid}] Predicted next UID")
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        await self.tagged(tag, "OK", f"[{mode}] {'Examine' if readonly else 'Select'} completed.")

    async def cmd_SELECT(self, tag: str, args: list[Token]) -> None:
        await self._select(tag, args, readonly=False)

    async def cmd_EXAMINE(self, tag: str, args: list[Token]) -> None:
        await self._select(tag, args, readonly=True)

    async def cmd_LIST(self, tag: str, args: list[Token]) -> None:
        if len(args) != 2:
            raise Bad("Error in IMAP command LIST: expected reference and pattern.")
        pattern = text(args[1])
        if pattern == "":
            await self.send('* LIST (\\Noselect) "/" ""')
        elif re.fullmatch(pattern.replace("*", ".*").replace("%", "[^/]*"), "INBOX", re.I):
            await self.send('* LIST (\\HasNoChildren) "/" INBOX')
        await self.tagged(tag, "OK", "List completed.")

    cmd_LSUB = cmd_LIST

    async def cmd_NAMESPACE(self, tag: str, args: list[Token]) -> None:
        await self.send('* NAMESPACE (("" "/")) NIL NIL')
        await self.tagged(tag, "OK", "Namespace completed.")

    async def cmd_ENABLE(self, tag: str, args: list[Token]) -> None:
        await self.send("* ENABLED")
        await self.tagged(tag, "OK", "Enabled.")

    async def cmd_STATUS(self, tag: str, args: list[Token]) -> None:
        self._inbox(args)
        if len(args) != 2 or not isinstance(args[1], list):
            raise Bad("Error in IMAP command STATUS: expected a list of items.")
        box = self.config.mailbox
        msgs = box.snapshot()
        values = {
            "MESSAGES": len(msgs),
            "RECENT": 0,
            "UIDNEXT": box.next_uid,
            "UIDVALIDITY": box.uid_validity,
            "UNSEEN": sum(1 for m in msgs if SEEN not in m.flags),
        }
        out = []
        for item in args[1]:
            name = text(item).upper()
            if name not in values:
                raise Bad(f"Unknown STATUS item {name}")
            out.append(f"{name} {values[name]}")
        await self.send(f"* STATUS INBOX ({' '.join(out)})")
        await self.tagged(tag, "OK", "Status completed.")

    async def cmd_IDLE(self, tag: str, args: list[Token]) -> None:
        await self.send("+ idling")
        while True:
            try:
                line = await self.read_line()
            except LineTooLong:
                continue
            self.transcript.client(show(line))
            if line.strip().upper() == b"DONE":
                break
            raise Bad("Expected DONE.")
        await self.tagged(tag, "OK", "Idle completed.")

    for _name in ("SELECT", "EXAMINE", "LIST", "LSUB", "NAMESPACE", "ENABLE", "STATUS", "IDLE"):
        locals()["cmd_" + _name].states = (AUTH, SELECTED)

    # ---- selected ------------------------------------------------------------------------------
    def _messages(self, spec: str, by_uid: bool) -> list[tuple[int, Message]]:
        view = self.view
        try:
            if by_uid:
                if self._uids is None:
                    self._uids = [m.uid for m in view]
                chosen = sequence_indexes(spec, self._uids)
            elif spec.isdigit() and spec.isascii() and 0 < int(spec) <= len(view):
                chosen = [int(spec) - 1]  # one message, as fetchmail asks
            else:
                check_sequence_numbers(spec, len(view)) if spec else None
                chosen = sequence_indexes(spec, range(1, len(view) + 1))
        except (ParseError, ValueError) as exc:
            raise Bad(f"Error in IMAP command: {exc}") from None
        return [(i + 1, view[i]) for i in chosen]

    async def cmd_FETCH(self, tag: str, args: list[Token], by_uid: bool = False) -> None:
        if len(args) != 2 or not isinstance(args[0], str):
            raise Bad("Error in IMAP command FETCH: expected a sequence set and items.")
        items = parse_fetch_items(args[1])
        if by_uid and not any(i.name == "UID" for i in items):
            items.insert(0, FetchItem("UID"))
        for count, (seq, msg) in enumerate(self._messages(args[0], by_uid), 1):
            await self._fetch_one(seq, msg, items)
            if count % 64 == 0:
                await self.flush()
        await self.tagged(tag, "OK", "Fetch completed.")

    async def _fetch_one(self, seq: int, msg: Message, items: list[FetchItem]) -> None:
        chunks = [b"* %d FETCH (" % seq]  # queued as they are: message bytes are not copied
        shown = f"* {seq} FETCH ("
        flags_changed = False
        if not self.readonly and SEEN not in msg.flags and any(i.sets_seen for i in items):
            msg.flags.add(SEEN)
            flags_changed = True
        parts: list[str] = []
        for item in items:
            name, value = self._fetch_value(msg, item)
            sep = " " if parts else ""
            if isinstance(value, bytes):
                head = f"{sep}{name} {{{len(value)}}}"
                chunks.append(head.encode() + CRLF)
                parts.append(f"{name} {{{len(value)}}}<{len(value)} bytes>")
                if self.faults.disconnect_mid_fetch:
                    await self.send_raw(b"".join(chunks) + value[: len(value) // 2], shown)
                    await self.cut_connection("disconnect mid-FETCH")
                chunks.append(value)
            else:
                chunks.append(f"{sep}{name} {value}".encode())
                parts.append(f"{name} {value}")
        if flags_changed and not any(i.name == "FLAGS" for i in items):
            chunks.append(f" FLAGS ({' '.join(sorted(msg.flags))})".encode())
            parts.append("FLAGS (...)")
        chunks.append(b")\r\n")
        if self.faults.delay:
            await self.pause()
        self.send_chunks(chunks, shown + " ".join(parts) + ")")

    def _fetch_value(self, msg: Message, item: FetchItem) -> tuple[str, str | bytes]:
        if item.name == "UID":
            return "UID", str(msg.uid)
        if item.name == "FLAGS":
            return "FLAGS", "(" + " ".join(sorted(msg.flags)) + ")"
        if item.name == "RFC822.SIZE":
            return "RFC822.SIZE", str(msg.size)
        if item.name == "INTERNALDATE":
            return "INTERNALDATE", quote(imap_date(msg.internal_date))
        if item.name == "RFC822":
            return "RFC822", msg.data
        if item.name == "RFC822.HEADER":
            return "RFC822.HEADER", msg.header
        if item.name == "RFC822.TEXT":
            return "RFC822.TEXT", msg.text
        data = section_data(msg, item.section)
        name = f"BODY[{item.section}]"
        if item.partial is not None:
            start, length = item.partial
            data = data[start:] if length is None else data[start : start + length]
            name += f"<{start}>"
        return name, data

    async def cmd_SEARCH(self, tag: str, args: list[Token], by_uid: bool = False) -> None:
        if args and isinstance(args[0], str) and args[0].upper() == "CHARSET":
            args = args[2:]
        predicate = self._search_all(args)
        hits = [str(m.uid if by_uid else i) for i, m in enumerate(self.view, 1) if predicate(i, m)]
        await self.send("* SEARCH" + "".join(" " + h for h in hits))
        await self.tagged(tag, "OK", "Search completed.")

    def _search_all(self, tokens: list[Token]) -> Predicate:
        preds: list[Predicate] = []
        pos = 0
        while pos < len(tokens):
            pred, pos = self._search_key(tokens, pos)
            preds.append(pred)
        if not preds:
            raise Bad("Missing SEARCH criteria.")
        return lambda i, m: all(p(i, m) for p in preds)

    def _search_key(self, tokens: list[Token], pos: int) -> tuple[Predicate, int]:
        token = tokens[pos]
        if isinstance(token, list):
            return self._search_all(token), pos + 1
        key = text(token).upper()

        def arg(k: int = 1) -> str:
            if pos + k >= len(tokens):
                raise Bad(f"Missing argument for SEARCH {key}.")
            return text(tokens[pos + k])

        flag_keys = {
            "ANSWERED": "\\Answered",
            "DELETED": DELETED,
            "FLAGGED": "\\Flagged",
            "SEEN": SEEN,
            "DRAFT": "\\Draft",
        }
        if key == "ALL":
            return (lambda i, m: True), pos + 1
        if key in flag_keys:
            flag = flag_keys[key]
            return (lambda i, m: flag in m.flags), pos + 1
        if key.startswith("UN") and key[2:] in flag_keys:
            flag = flag_keys[key[2:]]
            return (lambda i, m: flag not in m.flags), pos + 1
        if key in ("NEW", "RECENT"):
            return (lambda i, m: False), pos + 1
        if key == "OLD":
            return (lambda i, m: True), pos + 1
        if key in ("KEYWORD", "UNKEYWORD"):
            word, want = arg(), key == "KEYWORD"
            return (lambda i, m: (word in m.flags) == want), pos + 2
        if key == "NOT":
            inner, nxt = self._search_key(tokens, pos + 1) if pos + 1 < len(tokens) else (None, 0)
            if inner is None:
                raise Bad("Missing argument for SEARCH NOT.")
            return (lambda i, m: not inner(i, m)), nxt
        if key == "OR":
            if pos + 2 >= len(tokens):
                raise Bad("Missing arguments for SEARCH OR.")
            left, nxt = self._search_key(tokens, pos + 1)
            if nxt >= len(tokens):
                raise Bad("Missing arguments for SEARCH OR.")
            right, nxt = self._search_key(tokens, nxt)
            return (lambda i, m: left(i, m) or right(i, m)), nxt
        if key in ("LARGER", "SMALLER"):
            try:
                size = int(arg())
            except ValueError:
                raise Bad("Invalid size.") from None
            if key == "LARGER":
                return (lambda i, m: m.size > size), pos + 2
            return (lambda i, m: m.size < size), pos + 2
        if key == "UID":
            try:
                uids = set(sequence_set(arg(), sorted(m.uid for m in self.view)))
            except ParseError as exc:
                raise Bad(str(exc)) from None
            return (lambda i, m: m.uid in uids), pos + 2
        if key in ("FROM", "TO", "CC", "BCC", "SUBJECT"):
            needle = arg().lower().encode()
            return (lambda i, m: needle in header_fields(m.header, {key}, True).lower()), pos + 2
        if key == "HEADER":
            field, needle = arg().upper(), arg(2).lower().encode()
            return (
                lambda i, m: (
                    bool(header_fields(m.header, {field}, True).strip())
                    and needle in header_fields(m.header, {field}, True).lower()
                )
            ), pos + 3
        if key in ("BODY", "TEXT"):
            needle = arg().lower().encode()
            return (lambda i, m: needle in (m.text if key == "BODY" else m.data).lower()), pos + 2
        if key in ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"):
            day = parse_search_date(arg())

            def when(i: int, m: Message) -> bool:
                t = time.gmtime(m.internal_date)
                d = (t.tm_year, t.tm_mon, t.tm_mday)
                return (
                    d < day
                    if key.endswith("BEFORE")
                    else d == day
                    if key.endswith("ON")
                    else d >= day
                )

            return when, pos + 2
        if re.fullmatch(r"[\d*:,]+", key):
            try:
                numbers = set(sequence_set(key, list(range(1, len(self.view) + 1))))
            except ParseError as exc:
                raise Bad(str(exc)) from None
            return (lambda i, m: i in numbers), pos + 1
        raise Bad(f"Unknown SEARCH key {key}.")

    async def cmd_STORE(self, tag: str, args: list[Token], by_uid: bool = False) -> None:
        if len(args) < 3 or not isinstance(args[0], str) or not isinstance(args[1], str):
            raise Bad("Error in IMAP command STORE: expected set, item and flags.")
        if self.readonly:
            raise No("Mailbox is read-only.")
        item = args[1].upper()
        m = re.fullmatch(r"([+-]?)FLAGS(\.SILENT)?", item)
        if not m:
            raise Bad(f"Invalid STORE item {item}.")
        raw_flags = args[2] if isinstance(args[2], list) else args[2:]
        flags = {text(f) for f in raw_flags}
        canonical = {f.lower(): f for f in SYSTEM_FLAGS}
        flags = {canonical.get(f.lower(), f) for f in flags}
        for seq, msg in self._messages(args[0], by_uid):
            with self.config.mailbox.lock:
                if m.group(1) == "+":
                    msg.flags |= flags
                elif m.group(1) == "-":
                    msg.flags -= flags
                else:
                    msg.flags = set(flags)
            if not m.group(2):
                uid = f"UID {msg.uid} " if by_uid else ""
                await self.send(f"* {seq} FETCH ({uid}FLAGS ({' '.join(sorted(msg.flags))}))")
        await self.tagged(tag, "OK", "Store completed.")

    async def cmd_UID(self, tag: str, args: list[Token]) -> None:
        if not args or not isinstance(args[0], str):
            raise Bad("Error in IMAP command UID: missing command.")
        sub = args[0].upper()
        if sub == "FETCH":
            await self.cmd_FETCH(tag, args[1:], by_uid=True)
        elif sub == "SEARCH":
            await self.cmd_SEARCH(tag, args[1:], by_uid=True)
        elif sub == "STORE":
            await self.cmd_STORE(tag, args[1:], by_uid=True)
        else:
            raise Bad(f"Error in IMAP command UID: unsupported subcommand {sub}.")

    def _expunge(self) -> list[int]:
        """Remove \\Deleted messages; returns their sequence numbers (as sent, descending)."""
        gone = [i for i, m in enumerate(self.view, 1) if DELETED in m.flags]
        self.config.mailbox.expunge(self.view[i - 1].uid for i in gone)
        for i in reversed(gone):
            del self.view[i - 1]
        self._uids = None
        return list(reversed(gone))

    async def cmd_EXPUNGE(self, tag: str, args: list[Token]) -> None:
        if self.readonly:
            raise No("Mailbox is read-only.")
        for seq in self._expunge():
            await self.send(f"* {seq} EXPUNGE")
        await self.tagged(tag, "OK", "Expunge completed.")

    async def cmd_CLOSE(self, tag: str, args: list[Token]) -> None:
        if not self.readonly:
            self._expunge()
        self.state, self.view, self._uids = AUTH, [], None
        await self.tagged(tag, "OK", "Close completed.")

    async def cmd_UNSELECT(self, tag: str, args: list[Token]) -> None:
        self.state, self.view, self._uids = AUTH, [], None
        await self.tagged(tag, "OK", "Unselect completed.")

    async def cmd_CHECK(self, tag: str, args: list[Token]) -> None:
        await self.tagged(tag, "OK", "Check completed.")

    for _name in ("FETCH", "SEARCH", "STORE", "UID", "EXPUNGE", "CLOSE", "UNSELECT", "CHECK"):
        locals()["cmd_" + _name].states = (SELECTED,)
    del _name
