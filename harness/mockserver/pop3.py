"""POP3 server session (RFC 1939, CAPA RFC 2449, AUTH RFC 5034, STLS RFC 2595)."""

from __future__ import annotations

from harness.mockserver.auth import authenticate
from harness.mockserver.connection import Connection
from harness.mockserver.mailbox import DELETED, SEEN, Message
from harness.mockserver.profiles import Outcome
from harness.mockserver.session import LineSession, LineTooLong, ServerConfig, command
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


def small_number(arg: str) -> int | None:
    """A decimal number of at most 18 digits, or None."""
    return int(arg) if arg.isascii() and arg.isdigit() and len(arg) <= 18 else None


class Pop3Session(LineSession):
    protocol = "pop3"
    idle_bye = "-ERR Disconnected for inactivity."

    def __init__(self, config: ServerConfig, conn: Connection) -> None:
        super().__init__(config, conn)
        self.state = AUTHORIZATION
        self.pending_user: str | None = None
        self.messages: list[Message] = []
        self.deleted: set[int] = set()  # indexes into self.messages

    async def serve(self) -> None:
        await self.send(f"+OK {self.profile.pop3_greeting}")
        if self.faults.early_disconnect:
            await self.cut_connection("early disconnect after greeting")
        while self.state != UPDATE:
            try:
                line = await self.read_line()
            except LineTooLong:
                self.transcript.client("<overlong line>")
                await self.err("Line too long.")
                continue
            await self.dispatch(line)
            await self.after_command()
        await self.flush()

    async def dispatch(self, line: bytes) -> None:
        verb_b, _, rest_b = line.partition(b" ")
        verb = verb_b.decode("utf-8", "replace").upper()
        rest = rest_b.decode("utf-8", "replace")
        if verb in ("PASS", "AUTH") and rest:
            first = rest.split(" ")[0] if verb == "AUTH" else ""
            self.transcript.client(f"{verb} {first} {REDACTED}".replace("  ", " "))
        else:
            self.transcript.client(show(line))
        found, allowed = self.find(verb)
        try:
            if found is None or (not allowed and self.state == AUTHORIZATION):
                raise Err("Unknown command.")
            if not allowed:
                raise Err(f"{verb} not allowed in the {self.state} state.")
            await found.handler(self, [rest] if verb == "PASS" else rest.split())
        except Err as exc:
            await self.err(str(exc))

    async def ok(self, message: str = "") -> None:
        await self.hostile_prelude(b"+OK ")
        await self.send(f"+OK {message}".rstrip())

    async def err(self, message: str) -> None:
        await self.hostile_prelude(b"-ERR ")
        await self.send(f"-ERR {message}")

    async def multiline(self, first: str, lines: list[str]) -> None:
        await self.ok(first)
        body = "".join(f"{line}\r\n" for line in lines)
        payload = dot_stuff(body.encode()) if body else b".\r\n"
        self.send_chunks([payload], f"<{len(lines)} lines>")

    def capabilities(self) -> list[str]:
        caps = list(self.profile.pop3_capabilities)
        if self.state == AUTHORIZATION:
            if self.config.tls == "starttls" and not self.tls_active:
                caps.append("STLS")
            if self.config.allow_login or self.profile.pop3_user_always:
                caps.append("USER")
            caps.append(" ".join(["SASL", *self.offered_mechanisms()]))
        return caps

    # ---- any state -----------------------------------------------------------------------------
    @command("CAPA")
    async def cmd_capa(self, args: list[str]) -> None:
        await self.multiline("", self.capabilities())

    @command("QUIT")
    async def cmd_quit(self, args: list[str]) -> None:
        if self.state == TRANSACTION and self.deleted:
            doomed = [self.messages[i] for i in sorted(self.deleted)]
            with self.config.mailbox.lock:
                for msg in doomed:
                    msg.flags.add(DELETED)
            self.config.mailbox.expunge(m.uid for m in doomed)
            self.state = UPDATE
            await self.ok("Logging out, messages deleted.")
        else:
            logged_in, self.state = self.state == TRANSACTION, UPDATE
            await self.ok("Logging out." if logged_in else "Logging out")  # as dovecot words it

    # ---- authorization -------------------------------------------------------------------------
    @command("STLS", states=(AUTHORIZATION,))
    async def cmd_stls(self, args: list[str]) -> None:
        if self.config.tls != "starttls" or self.tls_active:
            raise Err("TLS is not available." if not self.tls_active else "TLS already active.")
        await self.ok("Begin TLS negotiation now.")
        await self.start_tls()

    @command("USER", states=(AUTHORIZATION,))
    async def cmd_user(self, args: list[str]) -> None:
        if not (self.config.allow_login or self.profile.pop3_user_always):
            raise Err("[AUTH] Plaintext authentication disallowed.")
        if len(args) != 1:
            raise Err("USER needs exactly one argument.")
        self.pending_user = args[0]
        await self.ok()

    @command("PASS", states=(AUTHORIZATION,))
    async def cmd_pass(self, args: list[str]) -> None:
        if self.pending_user is None:
            raise Err("No username given.")
        user, self.pending_user = self.pending_user, None
        if not self.config.allow_login:
            await self.auth_reply(Outcome.UNSUPPORTED)
        elif not self.check_password(user, args[0]):
            await self.auth_reply(Outcome.FAILED)
        elif self.faults.in_use:
            await self.auth_reply(Outcome.IN_USE)
        else:
            await self.logged_in(user)

    @command("AUTH", states=(AUTHORIZATION,))
    async def cmd_auth(self, args: list[str]) -> None:
        if not args:
            await self.multiline("", self.offered_mechanisms())
            return
        if len(args) > 2:
            raise Err("Too many arguments to AUTH.")
        result = await authenticate(self, args[0], args[1] if len(args) == 2 else None)
        if result.outcome is Outcome.OK and result.user is not None:
            await self.logged_in(result.user)
        else:
            await self.auth_reply(result.outcome)

    async def auth_reply(self, outcome: Outcome) -> None:
        await self.hostile_prelude(b"-ERR ")
        await self.send(self.profile.reply("pop3", outcome))
        if outcome is Outcome.IN_USE:  # dovecot's pop3 then closes the session
            await self.cut_connection("mailbox in use")

    async def logged_in(self, user: str) -> None:
        self.user = user
        self.messages = self.config.mailbox.snapshot()
        self.state = TRANSACTION
        await self.ok(self.profile.pop3_logged_in)

    # ---- transaction ---------------------------------------------------------------------------
    def _message(self, arg: str) -> tuple[int, Message]:
        number = small_number(arg)
        if number is None:
            raise Err(f"Invalid message number: {show(arg.encode(), 40)}")
        if not 1 <= number <= len(self.messages):
            raise Err(f"There's no message {show(arg.encode(), 40)}.")
        if number - 1 in self.deleted:
            raise Err("Message is deleted.")
        return number, self.messages[number - 1]

    def _live(self) -> list[tuple[int, Message]]:
        return [(i + 1, m) for i, m in enumerate(self.messages) if i not in self.deleted]

    @command("NOOP", states=(TRANSACTION,))
    async def cmd_noop(self, args: list[str]) -> None:
        await self.ok()

    @command("STAT", states=(TRANSACTION,))
    async def cmd_stat(self, args: list[str]) -> None:
        live = self._live()
        await self.ok(f"{len(live)} {sum(m.size for _, m in live)}")

    @command("LIST", states=(TRANSACTION,))
    async def cmd_list(self, args: list[str]) -> None:
        if args:
            number, msg = self._message(args[0])
            await self.ok(f"{number} {msg.size}")
            return
        live = self._live()
        await self.multiline(f"{len(live)} messages:", [f"{n} {m.size}" for n, m in live])

    @command("UIDL", states=(TRANSACTION,))
    async def cmd_uidl(self, args: list[str]) -> None:
        if args:
            number, msg = self._message(args[0])
            await self.ok(f"{number} {msg.uidl}")
            return
        await self.multiline("", [f"{n} {m.uidl}" for n, m in self._live()])

    async def _send_body(self, first: str, data: bytes) -> None:
        await self.ok(first)
        payload = dot_stuff(data)
        if self.faults.disconnect_mid_fetch:
            self.send_chunks([payload[: len(payload) // 2]], f"<half of {len(data)} bytes>")
            await self.cut_connection("disconnect mid-RETR")
        if self.faults.delay:
            await self.pause()
        self.send_chunks([payload], f"<{len(data)} bytes, dot-stuffed>")

    @command("RETR", states=(TRANSACTION,))
    async def cmd_retr(self, args: list[str]) -> None:
        if len(args) != 1:
            raise Err("RETR needs a message number.")
        _, msg = self._message(args[0])
        with self.config.mailbox.lock:
            msg.flags.add(SEEN)
        await self._send_body(f"{msg.size} octets", msg.data)

    @command("TOP", states=(TRANSACTION,))
    async def cmd_top(self, args: list[str]) -> None:
        if len(args) != 2:
            raise Err("TOP needs a message number and a line count.")
        _, msg = self._message(args[0])
        lines = small_number(args[1])
        if lines is None:
            raise Err("Invalid line count.")
        body = b"".join(msg.text.splitlines(keepends=True)[:lines])
        await self._send_body("", msg.header + body)

    @command("DELE", states=(TRANSACTION,))
    async def cmd_dele(self, args: list[str]) -> None:
        if len(args) != 1:
            raise Err("DELE needs a message number.")
        number, _ = self._message(args[0])
        self.deleted.add(number - 1)
        await self.ok("Marked to be deleted.")

    @command("RSET", states=(TRANSACTION,))
    async def cmd_rset(self, args: list[str]) -> None:
        self.deleted.clear()
        await self.ok()
