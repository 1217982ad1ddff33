"""IMAP4rev1 server session: enough for fetchmail, curl, Python's imaplib and common clients."""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass

from harness.mockserver import imapsearch
from harness.mockserver.auth import authenticate
from harness.mockserver.connection import Connection
from harness.mockserver.imapsearch import SearchError, header_fields
from harness.mockserver.imapwire import (
    LITERAL_AT_END,
    ParseError,
    Token,
    check_sequence_numbers,
    quote,
    sequence_indexes,
    text,
    tokenize,
    wildcard_match,
)
from harness.mockserver.mailbox import DELETED, SEEN, SYSTEM_FLAGS, Message
from harness.mockserver.profiles import Outcome
from harness.mockserver.session import (
    CRLF,
    Disconnect,
    LineSession,
    LineTooLong,
    ServerConfig,
    command,
)
from harness.mockserver.transcript import REDACTED, show

NOT_AUTH, AUTH, SELECTED, LOGOUT = "not-authenticated", "authenticated", "selected", "logout"
ANY = (NOT_AUTH, AUTH, SELECTED)
LOGGED_IN = (AUTH, SELECTED)
MONTHS = imapsearch.MONTHS
FETCH_MACROS = {
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
}
_BODY_ITEM = re.compile(
    r"(BODY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d{1,18})(?:\.(\d{1,18}))?>)?$", re.IGNORECASE
)
_HEADER_FIELDS = re.compile(r"HEADER\.FIELDS(\.NOT)?\s*\((.*)\)")
_STORE_ITEM = re.compile(r"([+-]?)FLAGS(\.SILENT)?")
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


Frozen = str | bytes | tuple["Frozen", ...]


def _freeze(token: Token) -> Frozen:
    return tuple(_freeze(t) for t in token) if isinstance(token, list) else token


def parse_fetch_items(token: Token) -> list[FetchItem]:
    """FETCH items of a request; the same request (fetchmail's, every message) is parsed once."""
    return list(_parse_fetch_items(_freeze(token)))


@functools.lru_cache(maxsize=256)
def _parse_fetch_items(token: Frozen) -> tuple[FetchItem, ...]:
    names: tuple[Frozen, ...] = token if isinstance(token, tuple) else (token,)
    if isinstance(token, str) and token.upper() in FETCH_MACROS:
        names = tuple(FETCH_MACROS[token.upper()])
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
            raise Bad(f"Unknown or unsupported FETCH item {show(raw.encode(), 40)}")
        partial = None
        if m.group(3) is not None:
            partial = (int(m.group(3)), int(m.group(4)) if m.group(4) is not None else None)
        items.append(FetchItem(m.group(1).upper(), m.group(2), partial))
    if not items:
        raise Bad("Empty FETCH item list")
    return tuple(items)


def section_data(msg: Message, section: str) -> bytes:
    upper = section.upper()
    if upper == "":
        return msg.data
    if upper == "HEADER":
        return msg.header
    if upper in ("TEXT", "1"):
        return msg.text
    m = _HEADER_FIELDS.fullmatch(upper)
    if m:
        names = {n.strip('"') for n in m.group(2).split()}
        return header_fields(msg.header, names, keep=m.group(1) is None)
    raise Bad(f"Unsupported section [{show(section.encode(), 40)}]")


def imap_date(stamp: float) -> str:
    t = time.gmtime(stamp)
    day = f"{t.tm_mday:02d}-{MONTHS[t.tm_mon - 1]}-{t.tm_year}"
    return f"{day} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def astring(token: Token, what: str) -> str:
    if isinstance(token, list):
        raise Bad(f"Invalid {what}: a list.")
    return text(token)


class ImapSession(LineSession):
    protocol = "imap"
    idle_bye = "* BYE Disconnected for inactivity."

    def __init__(self, config: ServerConfig, conn: Connection) -> None:
        super().__init__(config, conn)
        self.state = NOT_AUTH
        self.view: list[Message] = []
        self._uids: list[int] | None = None  # UIDs of `view`, built by the first UID command
        self.readonly = False

    # ---- main loop -----------------------------------------------------------------------------
    async def serve(self) -> None:
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
            await self.dispatch(raw)
            await self.after_command()
        await self.flush()

    async def read_command(self) -> bytes:
        line = await self.read_line()
        if not line.endswith(b"}"):  # no literal: the usual case
            return line
        buf = bytearray(line)
        while m := LITERAL_AT_END.search(line):
            size, sync = int(m.group(1)), not m.group(2)
            if len(buf) + size > self.config.max_line * 4:
                self.transcript.client(show(bytes(buf)))
                if sync:
                    raise Bad("Literal too large")
                await self.send("* BYE Literal too large")
                raise Disconnect("non-synchronising literal too large")
            if sync:
                await self.send("+ OK")
            buf += CRLF + await self.read_exactly(size)
            line = await self.read_line()
            buf += line
        return bytes(buf)

    async def dispatch(self, raw: bytes) -> None:
        head = raw.split(b" ", 2)
        tag = head[0].decode("utf-8", "replace")
        if len(head) < 2 or not _TAG.fullmatch(tag):
            self.transcript.client(show(raw))
            await self.send("* BAD Error in IMAP command received by server.")
            return
        verb = head[1].decode("utf-8", "replace").upper()
        self.transcript.client(self._redacted(tag, verb, raw))
        found, allowed = self.find(verb)
        try:
            if self.state == NOT_AUTH and not allowed:  # dovecot's imap-login words it so
                raise Bad("Error in IMAP command received by server.")
            if found is None:
                raise Bad(f"Error in IMAP command {show(verb.encode(), 40)}: Unknown command.")
            if not allowed:
                raise Bad(f"Error in IMAP command {verb}: not allowed in state {self.state}.")
            try:
                args = tokenize(head[2]) if len(head) > 2 else []
                await found.handler(self, tag, args)
            except (ParseError, SearchError) as exc:
                raise Bad(f"Error in IMAP command {verb}: {exc}") from None
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
    @command("CAPABILITY")
    async def cmd_capability(self, tag: str, args: list[Token]) -> None:
        await self.send("* CAPABILITY " + " ".join(self.capabilities()))
        await self.tagged(
            tag, "OK", "Pre-login capabilities listed, post-login capabilities have more."
        )

    @command("NOOP")
    async def cmd_noop(self, tag: str, args: list[Token]) -> None:
        await self.tagged(tag, "OK", "NOOP completed.")

    @command("LOGOUT")
    async def cmd_logout(self, tag: str, args: list[Token]) -> None:
        await self.send("* BYE Logging out")
        await self.tagged(tag, "OK", "Logout completed.")
        self.state = LOGOUT

    @command("ID")
    async def cmd_id(self, tag: str, args: list[Token]) -> None:
        await self.send('* ID ("name" "fetchmail-harness mock")')
        await self.tagged(tag, "OK", "ID completed.")

    @command("XYZZY")
    async def cmd_xyzzy(self, tag: str, args: list[Token]) -> None:
        await self.send("* OK Nothing happens.")
        await self.tagged(tag, "OK", "XYZZY completed.")

    # ---- not authenticated ---------------------------------------------------------------------
    @command("STARTTLS", states=(NOT_AUTH,))
    async def cmd_starttls(self, tag: str, args: list[Token]) -> None:
        if self.config.tls != "starttls" or self.tls_active:
            raise Bad("STARTTLS not available.")
        await self.tagged(tag, "OK", "Begin TLS negotiation now.")
        await self.start_tls()

    @command("LOGIN", states=(NOT_AUTH,))
    async def cmd_login(self, tag: str, args: list[Token]) -> None:
        if len(args) != 2:
            raise Bad("Error in IMAP command LOGIN: expected user and password.")
        user, password = astring(args[0], "user name"), astring(args[1], "password")
        if not self.config.allow_login:
            await self.auth_reply(tag, Outcome.UNSUPPORTED)
        elif not self.check_password(user, password):
            raise No(self.profile.imap_login_failed)
        elif self.faults.in_use:
            await self.auth_reply(tag, Outcome.IN_USE)
        else:
            await self.logged_in(tag, user)

    @command("AUTHENTICATE", states=(NOT_AUTH,))
    async def cmd_authenticate(self, tag: str, args: list[Token]) -> None:
        if not args or len(args) > 2 or not all(isinstance(a, str) for a in args):
            raise Bad("Error in IMAP command AUTHENTICATE: expected a mechanism.")
        initial = args[1] if len(args) == 2 else None
        result = await authenticate(self, str(args[0]), initial)  # type: ignore[arg-type]
        if result.outcome is Outcome.OK and result.user is not None:
            await self.logged_in(tag, result.user)
        else:
            await self.auth_reply(tag, result.outcome)

    async def auth_reply(self, tag: str, outcome: Outcome) -> None:
        await self.tagged(tag, *self.profile.reply("imap", outcome).split(" ", 1))

    async def logged_in(self, tag: str, user: str) -> None:
        self.user = user
        self.state = AUTH
        if self.profile.capability_in_ok:
            caps = " ".join(self.capabilities())
            await self.tagged(tag, "OK", f"[CAPABILITY {caps}] {self.profile.imap_logged_in}")
        else:
            await self.tagged(tag, "OK", self.profile.imap_logged_in)

    # ---- authenticated -------------------------------------------------------------------------
    def _inbox(self, args: list[Token]) -> None:
        if not args:
            raise Bad("Missing mailbox name.")
        name = astring(args[0], "mailbox name")
        if name.upper() != "INBOX":
            raise No("[NONEXISTENT] Mailbox doesn't exist: " + show(name.encode(), 100))

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

    @command("SELECT", states=LOGGED_IN)
    async def cmd_select(self, tag: str, args: list[Token]) -> None:
        await self._select(tag, args, readonly=False)

    @command("EXAMINE", states=LOGGED_IN)
    async def cmd_examine(self, tag: str, args: list[Token]) -> None:
        await self._select(tag, args, readonly=True)

    @command("LIST", "LSUB", states=LOGGED_IN)
    async def cmd_list(self, tag: str, args: list[Token]) -> None:
        if len(args) != 2:
            raise Bad("Error in IMAP command LIST: expected reference and pattern.")
        pattern = astring(args[1], "pattern")
        if pattern == "":
            await self.send('* LIST (\\Noselect) "/" ""')
        elif wildcard_match(pattern.upper(), "INBOX"):
            await self.send('* LIST (\\HasNoChildren) "/" INBOX')
        await self.tagged(tag, "OK", "List completed.")

    @command("NAMESPACE", states=LOGGED_IN)
    async def cmd_namespace(self, tag: str, args: list[Token]) -> None:
        await self.send('* NAMESPACE (("" "/")) NIL NIL')
        await self.tagged(tag, "OK", "Namespace completed.")

    @command("ENABLE", states=LOGGED_IN)
    async def cmd_enable(self, tag: str, args: list[Token]) -> None:
        await self.send("* ENABLED")
        await self.tagged(tag, "OK", "Enabled.")

    @command("STATUS", states=LOGGED_IN)
    async def cmd_status(self, tag: str, args: list[Token]) -> None:
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
            name = astring(item, "STATUS item").upper()
            if name not in values:
                raise Bad(f"Unknown STATUS item {show(name.encode(), 40)}")
            out.append(f"{name} {values[name]}")
        await self.send(f"* STATUS INBOX ({' '.join(out)})")
        await self.tagged(tag, "OK", "Status completed.")

    @command("IDLE", states=LOGGED_IN)
    async def cmd_idle(self, tag: str, args: list[Token]) -> None:
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

    # ---- selected ------------------------------------------------------------------------------
    def _messages(self, spec: str, by_uid: bool) -> list[tuple[int, Message]]:
        view = self.view
        try:
            if by_uid:
                if self._uids is None:
                    self._uids = [m.uid for m in view]
                chosen = sequence_indexes(spec, self._uids)
            elif spec.isascii() and spec.isdigit() and 0 < int(spec[:19]) <= len(view):
                chosen = [int(spec) - 1]  # one message, as fetchmail asks
            else:
                check_sequence_numbers(spec, len(view)) if spec else None
                chosen = sequence_indexes(spec, range(1, len(view) + 1))
        except (ParseError, ValueError) as exc:
            raise Bad(f"Error in IMAP command: {exc}") from None
        return [(i + 1, view[i]) for i in chosen]

    @command("FETCH", states=(SELECTED,))
    async def cmd_fetch(self, tag: str, args: list[Token], by_uid: bool = False) -> None:
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
                    self.send_chunks([*chunks, value[: len(value) // 2]], shown)
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

    @command("SEARCH", states=(SELECTED,))
    async def cmd_search(self, tag: str, args: list[Token], by_uid: bool = False) -> None:
        if args and isinstance(args[0], str) and args[0].upper() == "CHARSET":
            args = args[2:]
        predicate = imapsearch.parse(args, self.view)
        hits = [str(m.uid if by_uid else i) for i, m in enumerate(self.view, 1) if predicate(i, m)]
        await self.send("* SEARCH" + "".join(" " + h for h in hits))
        await self.tagged(tag, "OK", "Search completed.")

    @command("STORE", states=(SELECTED,))
    async def cmd_store(self, tag: str, args: list[Token], by_uid: bool = False) -> None:
        if len(args) < 3 or not isinstance(args[0], str) or not isinstance(args[1], str):
            raise Bad("Error in IMAP command STORE: expected set, item and flags.")
        if self.readonly:
            raise No("Mailbox is read-only.")
        item = args[1].upper()
        m = _STORE_ITEM.fullmatch(item)
        if not m:
            raise Bad(f"Invalid STORE item {show(item.encode(), 40)}.")
        raw_flags = args[2] if isinstance(args[2], list) else args[2:]
        canonical = {f.lower(): f for f in SYSTEM_FLAGS}
        flags = {canonical.get(f.lower(), f) for f in (astring(t, "flag") for t in raw_flags)}
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

    @command("UID", states=(SELECTED,))
    async def cmd_uid(self, tag: str, args: list[Token]) -> None:
        if not args or not isinstance(args[0], str):
            raise Bad("Error in IMAP command UID: missing command.")
        sub = args[0].upper()
        if sub == "FETCH":
            await self.cmd_fetch(tag, args[1:], by_uid=True)
        elif sub == "SEARCH":
            await self.cmd_search(tag, args[1:], by_uid=True)
        elif sub == "STORE":
            await self.cmd_store(tag, args[1:], by_uid=True)
        else:
            raise Bad(f"Error in IMAP command UID: unknown subcommand {show(sub.encode(), 40)}.")

    def _expunge(self) -> list[int]:
        """Remove \\Deleted messages; returns their sequence numbers (as sent, descending)."""
        gone = [i for i, m in enumerate(self.view, 1) if DELETED in m.flags]
        self.config.mailbox.expunge(self.view[i - 1].uid for i in gone)
        for i in reversed(gone):
            del self.view[i - 1]
        self._uids = None
        return list(reversed(gone))

    @command("EXPUNGE", states=(SELECTED,))
    async def cmd_expunge(self, tag: str, args: list[Token]) -> None:
        if self.readonly:
            raise No("Mailbox is read-only.")
        for seq in self._expunge():
            await self.send(f"* {seq} EXPUNGE")
        await self.tagged(tag, "OK", "Expunge completed.")

    @command("CLOSE", states=(SELECTED,))
    async def cmd_close(self, tag: str, args: list[Token]) -> None:
        if not self.readonly:
            self._expunge()
        self.state, self.view, self._uids = AUTH, [], None
        await self.tagged(tag, "OK", "Close completed.")

    @command("UNSELECT", states=(SELECTED,))
    async def cmd_unselect(self, tag: str, args: list[Token]) -> None:
        self.state, self.view, self._uids = AUTH, [], None
        await self.tagged(tag, "OK", "Unselect completed.")

    @command("CHECK", states=(SELECTED,))
    async def cmd_check(self, tag: str, args: list[Token]) -> None:
        await self.tagged(tag, "OK", "Check completed.")
