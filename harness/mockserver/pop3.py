"""POP3 server session (RFC 1939, CAPA RFC 2449, AUTH RFC 5034, STLS RFC 2595)."""

from __future__ import annotations

import asyncio

from harness.mockserver.mailbox import DELETED, SEEN, Message
from harness.mockserver.sasl import AuthResult, Outcome, SaslAborted, SaslProtocolError
from harness.mockserver.session import LineSession, LineTooLong, ServerConfig, decode_sasl
from harness.mockserver.transcript import REDACTED, show

AUTHORIZATION, TRANSACTION, UPDATE = "authorization", "transaction", "update"


class Err(Exception):
    """Reply `-ERR <message>`."""


def dot_stuff(data: bytes) -> bytes:
    """Body of a multi-line reply: leading dots doubled, then the terminating ".\\r\\n"."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


class Pop3Session(LineSession):
    protocol = "pop3"

    def __init__(
        self, config: ServerConfig, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(config, reader, writer)
        self.state = AUTHORIZATION
        self.pending_user: str | None = None
        self.messages: list[Message] = []
        self.deleted: set[int] = set()  # indexes into self.messages

    async def run(self) -> None:
        await self.send(f"+OK {self.profile.pop3_greeting}")
        if self.faults.early_disconnect:
            await self.cut_connection("early disconnect after greeting")
        while self.state != UPDATE:
            try:
                line = await self.next_command_line()
            except LineTooLong:
                self.transcript.client("<overlong line>")
                await self.err("Line too long.")
                continue
            self.commands += 1
            await self.dispatch(line)
            if self.faults.disconnect_after and self.commands >= self.faults.disconnect_after:
                await self.cut_connection(f"disconnect after {self.commands} commands")
        await self.flush()

    fast_verbs = frozenset({b"RETR", b"TOP", b"LIST", b"UIDL", b"STAT", b"NOOP", b"DELE"})

    def is_fast(self, line: bytes) -> bool:
        return line.split(b" ", 1)[0].upper() in self.fast_verbs

    async def dispatch(self, line: bytes) -> None:
        verb_b, _, rest_b = line.partition(b" ")
        verb = verb_b.decode("utf-8", "replace").upper()
        rest = rest_b.decode("utf-8", "replace")
        if verb in ("PASS", "AUTH") and rest:
            first = rest.split(" ")[0] if verb == "AUTH" else ""
            self.transcript.client(f"{verb} {first} {REDACTED}".replace("  ", " "))
        else:
            self.transcript.client(show(line))
        handler = getattr(self, "cmd_" + verb, None) if verb.isalpha() else None
        try:
            if handler is None:
                raise Err(f"Unknown command: {show(verb_b, 40)}")
            if self.state not in getattr(handler, "states", (AUTHORIZATION, TRANSACTION)):
                raise Err(f"{verb} not allowed in the {self.state} state.")
            await handler(rest.split() if verb != "PASS" else [rest])
        except Err as exc:
            await self.err(str(exc))

    async def ok(self, message: str = "") -> None:
        if self.hostile:
            await self.hostile_prelude(b"+OK ")
        await self.send(f"+OK {message}".rstrip())

    async def err(self, message: str) -> None:
        if self.hostile:
            await self.hostile_prelude(b"-ERR ")
        await self.send(f"-ERR {message}")

    async def multiline(self, first: str, lines: list[str]) -> None:
        await self.ok(first)
        body = "".join(f"{line}\r\n" for line in lines)
        await self.send_raw(dot_stuff(body.encode()) if body else b".\r\n", f"<{len(lines)} lines>")

    def capabilities(self) -> list[str]:
        caps = list(self.profile.pop3_capabilities)
        if self.state == AUTHORIZATION:
            if self.config.tls == "starttls" and not self.tls_active:
                caps.append("STLS")
            if self.config.allow_login:
                caps.append("USER")
            mechs = self.offered_mechanisms()
            if mechs:
                caps.append("SASL " + " ".join(mechs))
        return caps

    # ---- any state -----------------------------------------------------------------------------
    async def cmd_CAPA(self, args: list[str]) -> None:
        await self.multiline("Capability list follows", self.capabilities())

    async def cmd_NOOP(self, args: list[str]) -> None:
        await self.ok()

    async def cmd_QUIT(self, args: list[str]) -> None:
        if self.state == TRANSACTION and self.deleted:
            doomed = [self.messages[i] for i in sorted(self.deleted)]
            with self.config.mailbox.lock:
                for msg in doomed:
                    msg.flags.add(DELETED)
            self.config.mailbox.expunge(m.uid for m in doomed)
            self.state = UPDATE
            await self.ok("Logging out, messages deleted.")
        else:
            self.state = UPDATE
            await self.ok("Logging out.")

    # ---- authorization -------------------------------------------------------------------------
    async def cmd_STLS(self, args: list[str]) -> None:
        if self.config.tls != "starttls" or self.tls_active:
            raise Err("TLS is not available." if not self.tls_active else "TLS already active.")
        await self.ok("Begin TLS negotiation now.")
        await self.start_tls()

    async def cmd_USER(self, args: list[str]) -> None:
        if not self.config.allow_login:
            raise Err("[AUTH] Plaintext authentication disallowed.")
        if len(args) != 1:
            raise Err("USER needs exactly one argument.")
        self.pending_user = args[0]
        await self.ok()

    async def cmd_PASS(self, args: list[str]) -> None:
        if self.pending_user is None:
            raise Err("No username given.")
        user, self.pending_user = self.pending_user, None
        if not self.check_password(user, args[0]):
            raise Err(self.profile.pop3_auth_failed)
        await self.logged_in(user)

    async def cmd_AUTH(self, args: list[str]) -> None:
        offered = self.offered_mechanisms()
        if not args:
            await self.multiline("", offered)
            return
        if len(args) > 2:
            raise Err("Too many arguments to AUTH.")
        mech = args[0].upper()
        if mech not in offered:
            raise Err(f"Unsupported authentication mechanism {mech}.")
        initial = None
        if len(args) == 2:
            try:
                initial = decode_sasl(args[1].encode())
            except (SaslAborted, SaslProtocolError):
                raise Err("Invalid base64 data in initial response.") from None
        result = await self.run_mechanism(mech, initial)
        await self.auth_reply(result)

    async def auth_reply(self, result: AuthResult) -> None:
        self.transcript.note(f"auth {result.outcome.value}: {result.reason}")
        if result.outcome is Outcome.OK and result.user is not None:
            await self.logged_in(result.user)
        elif result.outcome is Outcome.UNAVAILABLE:
            raise Err(self.profile.unavailable(self.profile.pop3_unavailable))
        elif result.outcome is Outcome.ABORTED:
            raise Err(self.profile.pop3_aborted)
        elif result.outcome is Outcome.MALFORMED:
            raise Err(self.profile.pop3_bad_base64)
        elif result.outcome is Outcome.PROTOCOL:
            raise Err(self.profile.pop3_bad_response)
        else:
            raise Err(self.profile.pop3_auth_failed)

    async def logged_in(self, user: str) -> None:
        self.user = user
        self.messages = self.config.mailbox.snapshot()
        self.state = TRANSACTION
        await self.ok(self.profile.pop3_logged_in)

    for _verb in ("STLS", "USER", "PASS", "AUTH"):
        locals()["cmd_" + _verb].states = (AUTHORIZATION,)

    # ---- transaction ---------------------------------------------------------------------------
    def _message(self, arg: str) -> tuple[int, Message]:
        try:
            number = int(arg)
        except ValueError:
            raise Err(f"Invalid message number: {show(arg.encode(), 40)}") from None
        if not 1 <= number <= len(self.messages):
            raise Err(f"There's no message {number}.")
        if number - 1 in self.deleted:
            raise Err("Message is deleted.")
        return number, self.messages[number - 1]

    def _live(self) -> list[tuple[int, Message]]:
        return [(i + 1, m) for i, m in enumerate(self.messages) if i not in self.deleted]

    async def cmd_STAT(self, args: list[str]) -> None:
        live = self._live()
        await self.ok(f"{len(live)} {sum(m.size for _, m in live)}")

    async def cmd_LIST(self, args: list[str]) -> None:
        if args:
            number, msg = self._message(args[0])
            await self.ok(f"{number} {msg.size}")
            return
        live = self._live()
        await self.multiline(f"{len(live)} messages:", [f"{n} {m.size}" for n, m in live])

    async def cmd_UIDL(self, args: list[str]) -> None:
        if args:
            number, msg = self._message(args[0])
            await self.ok(f"{number} {msg.uidl}")
            return
        await self.multiline("", [f"{n} {m.uidl}" for n, m in self._live()])

    async def _send_body(self, first: str, data: bytes) -> None:
        await self.ok(first)
        payload = dot_stuff(data)
        if self.faults.disconnect_mid_fetch:
            await self.send_raw(payload[: len(payload) // 2], f"<half of {len(data)} bytes>")
            await self.cut_connection("disconnect mid-RETR")
        if self.faults.delay:
            await self.pause()
        await self.send_raw(payload, f"<{len(data)} bytes, dot-stuffed>")

    async def cmd_RETR(self, args: list[str]) -> None:
        if len(args) != 1:
            raise Err("RETR needs a message number.")
        _, msg = self._message(args[0])
        with self.config.mailbox.lock:
            msg.flags.add(SEEN)
        await self._send_body(f"{msg.size} octets", msg.data)

    async def cmd_TOP(self, args: list[str]) -> None:
        if len(args) != 2:
            raise Err("TOP needs a message number and a line count.")
        _, msg = self._message(args[0])
        try:
            lines = int(args[1])
        except ValueError:
            raise Err("Invalid line count.") from None
        if lines < 0:
            raise Err("Invalid line count.")
        body = b"".join(msg.text.splitlines(keepends=True)[:lines])
        await self._send_body("", msg.header + body)

    async def cmd_DELE(self, args: list[str]) -> None:
        if len(args) != 1:
            raise Err("DELE needs a message number.")
        number, _ = self._message(args[0])
        self.deleted.add(number - 1)
        await self.ok("Marked to be deleted.")

    async def cmd_RSET(self, args: list[str]) -> None:
        self.deleted.clear()
        await self.ok()

    for _verb in ("STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET"):
        locals()["cmd_" + _verb].states = (TRANSACTION,)
    del _verb
