"""SMTP submission server session (RFC 5321, 6409; AUTH RFC 4954; STARTTLS RFC 3207).

Port-587 style (`tls="starttls"`) or 465 style (`tls="implicit"`). `AUTH XOAUTH2` and
`AUTH OAUTHBEARER` (initial response or `334` continuation, the error challenge and its
answer) run through the same SASL code as IMAP and POP3; MAIL/RCPT/DATA store each accepted
message byte-exact (dot-unstuffed) in the controller's `Outbox`. Token validation down gives
`454 4.7.0`, a bad token `535 5.7.8` after the error challenge (profile wording).
"""

from __future__ import annotations

import re
import socket

from harness.mockserver.auth import authenticate
from harness.mockserver.connection import Connection
from harness.mockserver.mailbox import Submission
from harness.mockserver.profiles import Outcome
from harness.mockserver.session import LineSession, LineTooLong, ServerConfig, command
from harness.mockserver.transcript import REDACTED, show

GREETED, READY, DONE = "greeted", "ready", "done"  # READY: after EHLO/HELO
_PATH = re.compile(r"(?i)(FROM|TO):\s*<([^<>]*)>(?:\s+(.*))?")
MAX_RECIPIENTS = 100


class Reply(Exception):
    """Answer the command with this whole reply line (code, enhanced code, text)."""


class SmtpSession(LineSession):
    protocol = "smtp"
    continuation = b"334 "
    idle_bye = "421 4.4.2 Disconnected for inactivity"

    def __init__(self, config: ServerConfig, conn: Connection) -> None:
        super().__init__(config, conn)
        self.state = GREETED
        self.hostname = socket.gethostname()
        self.mechanism: str | None = None
        self.mail_from: str | None = None
        self.rcpt_to: list[str] = []
        self.chunks: list[bytes] = []  # BDAT chunks of the message under way

    async def serve(self) -> None:
        await self.send("220 " + self.profile.smtp_greeting.format(host=self.hostname))
        if self.faults.early_disconnect:
            await self.cut_connection("early disconnect after greeting")
        while self.state != DONE:
            try:
                line = await self.read_line()
            except LineTooLong:
                self.transcript.client("<overlong line>")
                await self.reply(self.profile.smtp_line_too_long)
                continue
            await self.dispatch(line)
            await self.after_command()
        await self.flush()

    async def dispatch(self, line: bytes) -> None:
        verb_b, _, rest_b = line.partition(b" ")
        verb = verb_b.decode("utf-8", "replace").upper()
        rest = rest_b.decode("utf-8", "replace").strip()
        if verb == "AUTH" and len(rest.split()) > 1:
            self.transcript.client(f"AUTH {show(rest.split()[0].encode(), 40)} {REDACTED}")
        else:
            self.transcript.client(show(line))
        limit = self.profile.smtp_param_limit
        found, allowed = self.find(verb)
        try:
            if limit and len(rest_b) > limit:
                raise Reply(self.profile.smtp_line_too_long)
            if found is None:
                raise Reply("500 5.5.1 Unknown command")
            if not allowed:
                raise Reply("503 5.5.0 Bad sequence of commands")
            await found.handler(self, rest)
        except Reply as exc:
            await self.reply(str(exc))

    def check_sasl_size(self, size: int) -> None:
        """Dovecot's submission refuses (and lives on) where its IMAP/POP3 drop the client."""
        limit = self.profile.smtp_sasl_limit
        if limit and size > limit:
            self.transcript.note(f"SASL response of {size} bytes, over {limit}")
            raise Reply(self.profile.smtp_line_too_long)

    async def reply(self, line: str) -> None:
        await self.hostile_prelude(line[:3].encode() + b"-")
        await self.send(line)

    def extensions(self) -> list[str]:
        """The profile's EHLO keywords in its order; its "AUTH" and "STARTTLS" are there only
        while they can be used."""
        exts = []
        for ext in self.profile.smtp_extensions:
            if ext == "STARTTLS":
                if self.config.tls == "starttls" and not self.tls_active:
                    exts.append(ext)
            elif ext == "AUTH":
                if self.user is None and self.offered_mechanisms():
                    exts.append(" ".join(["AUTH", *self.offered_mechanisms()]))
            else:
                exts.append(ext)
        return exts

    # ---- any state -----------------------------------------------------------------------------
    @command("EHLO")
    async def cmd_ehlo(self, rest: str) -> None:
        await self._hello(rest, [self.hostname, *self.extensions()])

    @command("HELO")
    async def cmd_helo(self, rest: str) -> None:
        await self._hello(rest, [self.hostname])  # RFC 5321: no extensions after HELO

    async def _hello(self, rest: str, lines: list[str]) -> None:
        if not rest:
            raise Reply("501 Missing hostname")
        self._reset()
        self.state = READY
        for line in lines[:-1]:
            await self.send("250-" + line)
        await self.reply("250 " + lines[-1])

    @command("NOOP")
    async def cmd_noop(self, rest: str) -> None:
        await self.reply("250 2.0.0 OK")

    @command("RSET")
    async def cmd_rset(self, rest: str) -> None:
        self._reset()
        await self.reply("250 2.0.0 OK")

    @command("QUIT")
    async def cmd_quit(self, rest: str) -> None:
        self.state = DONE
        await self.reply("221 2.0.0 Bye")

    def _reset(self) -> None:
        self.mail_from, self.rcpt_to, self.chunks = None, [], []

    # ---- before a transaction ------------------------------------------------------------------
    @command("STARTTLS", states=(READY,))
    async def cmd_starttls(self, rest: str) -> None:
        if self.config.tls != "starttls" or self.tls_active:
            raise Reply("502 5.5.1 TLS not available" if not self.tls_active else
                        "503 5.5.1 TLS already active")
        await self.reply("220 2.0.0 Begin TLS negotiation now.")
        await self.start_tls()
        self.state = GREETED  # RFC 3207: the client says EHLO again
        self._reset()

    @command("AUTH", states=(READY,))
    async def cmd_auth(self, rest: str) -> None:
        if self.user is not None:
            raise Reply("503 5.5.0 Already authenticated")
        if self.mail_from is not None:
            raise Reply("503 5.5.0 Authentication not permitted during a mail transaction")
        args = rest.split()
        if not args or len(args) > 2:
            raise Reply("501 5.5.4 Invalid parameters")
        result = await authenticate(self, args[0], args[1] if len(args) == 2 else None)
        if result.outcome is Outcome.OK and result.user is not None:
            self.user, self.mechanism = result.user, args[0].upper()
            await self.reply(self.profile.smtp_logged_in)
        else:
            await self.reply(self.profile.reply("smtp", result.outcome))

    # ---- the mail transaction ------------------------------------------------------------------
    @command("MAIL", states=(READY,))
    async def cmd_mail(self, rest: str) -> None:
        self._check_auth()
        if self.mail_from is not None:
            raise Reply("503 5.5.0 MAIL already given")
        m = _PATH.fullmatch(rest)
        if not m or m.group(1).upper() != "FROM":
            raise Reply("501 5.5.4 Invalid FROM: parameter")
        self.mail_from = m.group(2)
        await self.reply("250 2.1.0 Ok")

    def _check_auth(self) -> None:
        if self.user is None and self.config.require_auth:
            raise Reply("530 5.7.0 Authentication required.")

    @command("RCPT", states=(READY,))
    async def cmd_rcpt(self, rest: str) -> None:
        self._check_auth()
        if self.mail_from is None:
            raise Reply("503 5.5.0 MAIL needed first")
        m = _PATH.fullmatch(rest)
        if not m or m.group(1).upper() != "TO" or not m.group(2):
            raise Reply("501 5.5.4 Invalid TO: parameter")
        if len(self.rcpt_to) >= MAX_RECIPIENTS:
            raise Reply("452 4.5.3 Too many recipients")
        self.rcpt_to.append(m.group(2))
        await self.reply("250 2.1.5 Ok")

    def _check_transaction(self) -> None:
        self._check_auth()
        if self.mail_from is None:
            raise Reply("503 5.5.0 MAIL needed first")
        if not self.rcpt_to:
            raise Reply("554 5.5.0 No valid recipients")

    def _accept(self, data: bytes) -> str:
        assert self.mail_from is not None
        submission = Submission(
            self.mail_from, tuple(self.rcpt_to), data, self.user, self.mechanism, self.tls_active
        )
        self.config.outbox.add(submission)
        self._reset()
        return f"250 2.0.0 Ok: queued as mock{len(self.config.outbox)}"

    @command("BDAT", states=(READY,))
    async def cmd_bdat(self, rest: str) -> None:
        """RFC 3030 CHUNKING: `BDAT size [LAST]`, then exactly `size` bytes, as they are."""
        args = rest.split()
        size = int(args[0]) if args and args[0].isascii() and args[0].isdigit() else -1
        last = len(args) == 2 and args[1].upper() == "LAST"
        if size < 0 or size > self.config.max_line * 64 or len(args) > 1 + last:
            raise Reply("501 5.5.4 Invalid parameters")
        chunk = await self.read_exactly(size)  # read even when refused: it is on the wire
        self.transcript.client(f"<BDAT chunk: {size} bytes{' LAST' if last else ''}>")
        self._check_transaction()
        self.chunks.append(chunk)
        if not last:
            await self.reply(f"250 2.0.0 {size} octets received")
            return
        data, self.chunks = b"".join(self.chunks), []
        await self.reply(self._accept(data))

    @command("DATA", states=(READY,))
    async def cmd_data(self, rest: str) -> None:
        self._check_transaction()
        if self.chunks:
            raise Reply("503 5.5.0 DATA not permitted during BDAT")
        await self.reply("354 OK")
        lines: list[bytes] = []
        too_long = False
        while True:
            try:
                line = await self.read_line()
            except LineTooLong:
                too_long = True
                continue
            if line == b".":
                break
            lines.append(line[1:] if line.startswith(b".") else line)
        data = b"".join(line + b"\r\n" for line in lines)
        self.transcript.client(f"<message: {len(data)} bytes>")
        if too_long:
            self._reset()
            raise Reply("500 5.5.2 Line too long")
        await self.reply(self._accept(data))
