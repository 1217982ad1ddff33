"""A bounded, seeded fuzz of the mock servers: hostile lines over IMAP, POP3 and SMTP, before
and after login and STARTTLS. No session may crash, no other session may stall, and a real
client logs in afterwards.

Each batch of lines is pipelined, then padding (ends a SASL exchange, a small literal, a DATA
body) and a sentinel line; the batch is done when the server's transcript shows the sentinel
answered, or the session ended (LOGOUT/QUIT/BYE among the lines, a dropped oversized SASL
response). Meanwhile a watcher session does NOOP round trips: a command that blocked the
event loop would stall it (the bound below only detects a hang; nothing is timed).
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import poplib
import random
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from harness.mockserver import InMemoryValidator, Mailbox, MailServerController, TestCA
from harness.mockserver.imap import ImapSession
from harness.mockserver.pop3 import Pop3Session
from harness.mockserver.smtp import SmtpSession
from harness.mockserver.transcript import Transcript
from tests.helpers.mailclients import PASSWORD, USER, b64, oauthbearer, xoauth2

SEED = 20261201
LINES_PER_BATCH = 100
BATCHES = 14  # per protocol and phase: 9 phases x 14 x 100 = 12,600 inputs
HANG = 60.0  # seconds without progress that count as a hang (not a timing check)
GOOD_TOKEN = "fuzz-good-token"
PATHOLOGICAL = [  # inputs that crashed or froze the mock before
    b'a LIST "" "' + b"%" * 70 + b'\\d"',
    b'a LIST "" "' + b"*%" * 200 + b'x"',
    b'a LIST "" "["',
    b'a LIST "" "a{99999999999}"',
    b"a LOGIN (x) y",
    b"a LOGIN x (y)",
    b"a SELECT (INBOX)",
    b"a EXAMINE ((x))",
    b"a STATUS (INBOX) (MESSAGES)",
    b"a STORE 1 FLAGS ((x))",
    b"a SEARCH FROM (x)",
    b"a SEARCH LARGER (1)",
    b"a SEARCH " + b"NOT " * 3000 + b"ALL",
    b"a NOOP " + b"(" * 5000,
    b"a FETCH " + b"9" * 5000 + b" FLAGS",
    b"TOP 1 " + b"9" * 5000,
    b"RETR " + b"9" * 5000,
]


# ---- the generator ---------------------------------------------------------------------------
def _atom(rng: random.Random) -> bytes:
    return rng.choice(
        [
            b"INBOX",
            b"x",
            b"*",
            b"%",
            b"1:*",
            b"1,2:3",
            b"0",
            b"-1",
            b"9" * rng.randint(5, 40),
            b"BODY[HEADER.FIELDS (FROM TO)]<0.10>",
            b"BODY.PEEK[]",
            b"BODY[",
            b"]",
            b"1-Jan-2024",
            b"\\Seen",
            b"+FLAGS.SILENT",
            b"UNSEEN",
            b"OR",
            b"NOT",
            b"=",
            b"AQ==",
            b"FROM:<a@b>",
            b"TO:<>",
            b"<" * rng.randint(1, 50),
            bytes(rng.randrange(0x21, 0x100) for _ in range(rng.randint(1, 30))).replace(
                b"\x7f", b"?"
            ),
        ]
    )


def _arg(rng: random.Random, depth: int = 0) -> bytes:
    kind = rng.randrange(10)
    if kind <= 3:
        return _atom(rng)
    if kind == 4:
        body = _atom(rng).replace(b'"', b'\\"')
        return b'"' + body + (b'"' if rng.random() < 0.8 else b"")
    if kind == 5 and depth < 3:
        return b"(" + b" ".join(_arg(rng, depth + 1) for _ in range(rng.randint(0, 4))) + b")"
    if kind == 6:  # a small literal (sync or not) whose bytes are in the line that follows
        size = rng.randint(0, 12)
        return b"{%d%s}" % (size, b"+" if rng.random() < 0.5 else b"")
    if kind == 7:
        payload = xoauth2(USER, rng.choice([GOOD_TOKEN, "bad", ""]))
        return b64(payload if rng.random() < 0.5 else oauthbearer(USER, "bad")).encode()
    if kind == 8:
        return rng.choice([b"{99999999}", b"{18446744073709551616}", b"(" * rng.randint(60, 200)])
    return b"x" * rng.choice([0, 1, 300, 9000])


def _mutate(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(data))
        data[pos:pos] = bytes([rng.choice(b" ()[]{}\"\\*%+-=\x00\x01\xff")])
    return bytes(data)


ENDING = {"LOGOUT", "QUIT"}  # rare, or sessions would be short


def line_maker(verbs: list[str], tagged: bool) -> Callable[[random.Random], bytes]:
    others = [v for v in verbs if v not in ENDING]
    ending = [v for v in verbs if v in ENDING]

    def make(rng: random.Random) -> bytes:
        if rng.random() < 0.03:
            return rng.choice(PATHOLOGICAL)
        choices = ending if rng.random() < 0.002 else others
        verb = rng.choice([*choices, "FROB", "", "UID FETCH", "UID STORE", "UID FROB"]).encode()
        if rng.random() < 0.3:
            verb = verb.lower()
        parts = [verb, *(_arg(rng) for _ in range(rng.randint(0, 5)))]
        if tagged:
            parts.insert(0, rng.choice([b"a", b"a1", b"*", b"+", b"x{", b"t" * 200]))
        line = b" ".join(parts)
        return _mutate(rng, line) if rng.random() < 0.2 else line

    return make


# STARTTLS is left out: after it the server waits for a handshake the fuzzer never starts
# (test_pipelining covers what is pipelined after it).
MAKERS = {
    "imap": line_maker(sorted(set(ImapSession.commands) - {"STARTTLS"}), tagged=True),
    "pop3": line_maker(sorted(set(Pop3Session.commands) - {"STLS"}), tagged=False),
    "smtp": line_maker(sorted(set(SmtpSession.commands) - {"STARTTLS"}), tagged=False),
}
PADDING = b"\r\n.\r\n" + b"*\r\n" * 8  # ends DATA, SASL, literals of up to 12 bytes
NOT_FUZZ = ("C: *", "C: .", "C: zz", "C: NOOP fuzz-", "C: w")  # padding, sentinels, watcher


# ---- driving one session ---------------------------------------------------------------------
@dataclass
class Client:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def line(self) -> bytes:
        return (await asyncio.wait_for(self.reader.readline(), HANG)).rstrip(b"\r\n")

    async def ask(self, data: str) -> bytes:
        self.writer.write(data.encode() + b"\r\n")
        return await self.line()

    async def until(self, prefix: bytes) -> None:
        while not (await self.line()).startswith(prefix):
            pass


async def connect(ctrl: MailServerController, phase: str, ca: TestCA) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", ctrl.port)
    client = Client(reader, writer)
    await client.line()  # greeting
    protocol = ctrl.protocol
    if protocol == "smtp":
        client.writer.write(b"EHLO fuzz\r\n")
        await client.until(b"250 ")
    if phase in ("starttls", "after-login-tls"):
        command = {"imap": "s STARTTLS", "pop3": "STLS", "smtp": "STARTTLS"}[protocol]
        assert (await client.ask(command)).startswith((b"s OK", b"+OK", b"220"))
        await writer.start_tls(ca.client_context(), server_hostname="localhost")
        if protocol == "smtp":
            client.writer.write(b"EHLO fuzz\r\n")
            await client.until(b"250 ")
    if phase.startswith("after-login"):
        if protocol == "imap":
            assert (await client.ask(f'l LOGIN {USER} "{PASSWORD}"')).startswith(b"l OK")
            client.writer.write(b"s SELECT INBOX\r\n")
            await client.until(b"s OK")
        elif protocol == "pop3":
            assert (await client.ask(f"USER {USER}")).startswith(b"+OK")
            assert (await client.ask(f"PASS {PASSWORD}")).startswith(b"+OK")
        else:
            auth = f"AUTH XOAUTH2 {b64(xoauth2(USER, GOOD_TOKEN))}"
            assert (await client.ask(auth)).startswith(b"235")
    return client


def transcript_of(ctrl: MailServerController, client: Client) -> Transcript:
    host, port = client.writer.get_extra_info("sockname")[:2]
    return next(t for t in ctrl.transcripts if t.peer == f"{host}:{port}")


def ended(transcript: Transcript) -> bool:
    ends = ("-- disconnected", "-- session ended")
    return any(line.startswith(ends) for line in transcript.lines)


def answered(transcript: Transcript, sentinel: str) -> bool:
    lines = transcript.lines
    if ended(transcript):
        return True
    try:
        at = lines.index("C: " + sentinel)
    except ValueError:
        return False
    return any(line.startswith("S: ") for line in lines[at + 1 :])


async def drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(1 << 16):
        pass


async def fuzz(ctrl: MailServerController, phase: str, ca: TestCA, rng: random.Random) -> int:
    make = MAKERS[ctrl.protocol]
    sent = 0
    client = None
    for batch in range(BATCHES):
        if client is None or client.writer.is_closing():
            client = await connect(ctrl, phase, ca)
            draining = asyncio.create_task(drain(client.reader))
            transcript = transcript_of(ctrl, client)
        sentinel = f"zz{batch} NOOP" if ctrl.protocol == "imap" else f"NOOP fuzz-{batch}"
        lines = [make(rng) for _ in range(LINES_PER_BATCH)]
        try:
            client.writer.write(b"\r\n".join(lines) + PADDING + sentinel.encode() + b"\r\n")
            await client.writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass  # the server ended the session mid-batch: answered() sees it
        sent += len(lines)
        for _ in range(int(HANG * 100)):
            if answered(transcript, sentinel):
                break
            await asyncio.sleep(0.01)
        else:
            tail = "\n".join(transcript.lines[-30:])
            pytest.fail(f"{ctrl.protocol} {phase}: batch {batch} never answered:\n{tail}")
        if ended(transcript):
            client.writer.close()
            await asyncio.gather(draining, return_exceptions=True)
            client = None
    if client is not None:
        client.writer.close()
        await asyncio.gather(draining, return_exceptions=True)
    return sent


async def watch(port: int, stop: asyncio.Event) -> int:
    """NOOP round trips on an untouched session until `stop`; how many it made."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = Client(reader, writer)
    await client.line()
    rounds = 0
    while not stop.is_set():
        assert await client.ask(f"w{rounds} NOOP") == f"w{rounds} OK NOOP completed.".encode()
        rounds += 1
        await asyncio.sleep(0.005)
    writer.close()
    return rounds


async def fuzz_all(servers: dict[str, MailServerController], ca: TestCA) -> tuple[int, int]:
    rng = random.Random(SEED)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(servers["imap"].port, stop))
    sent = 0
    for protocol, phases in {
        "imap": ("before-login", "starttls", "after-login", "after-login-tls"),
        "pop3": ("before-login", "starttls", "after-login"),
        "smtp": ("before-login", "after-login-tls"),
    }.items():
        for phase in phases:
            sent += await fuzz(servers[protocol], phase, ca, rng)
    stop.set()
    return sent, await watcher


# ---- the test --------------------------------------------------------------------------------
def test_fuzz_no_crash_no_stall_and_a_valid_login_afterwards(ca: TestCA) -> None:
    validator = InMemoryValidator()
    validator.add(GOOD_TOKEN, USER)
    mailbox = Mailbox.generate(5, 1500, seed=1)
    servers = {
        protocol: MailServerController(
            protocol,
            tls="starttls",
            ca=ca,
            validator=validator,
            mailbox=mailbox,
            passwords={USER: PASSWORD},
            max_line=16 * 1024,
        ).start()
        for protocol in ("imap", "pop3", "smtp")
    }
    try:
        sent, rounds = asyncio.run(fuzz_all(servers, ca))
        seen = sum(
            1
            for ctrl in servers.values()
            for t in ctrl.transcripts
            for line in t.lines
            if line.startswith("C: ") and not line.startswith(NOT_FUZZ)
        )
        assert seen >= 10_000, (sent, seen)  # lines the sessions read and handled
        assert rounds > 0  # the watcher kept being answered throughout
        for ctrl in servers.values():
            assert ctrl.errors == [], ctrl.errors
            crashed = [t.text() for t in ctrl.transcripts if "internal error" in t.text()]
            assert not crashed, crashed[0][-2000:]
        check_valid_logins(servers, ca, mailbox)
    finally:
        for ctrl in servers.values():
            ctrl.stop()


def check_valid_logins(
    servers: dict[str, MailServerController], ca: TestCA, mailbox: Mailbox
) -> None:
    first = mailbox.snapshot()[0].data if len(mailbox) else None
    imap = imaplib.IMAP4("127.0.0.1", servers["imap"].port)
    imap.starttls(ssl_context=ca.client_context())
    imap.authenticate("XOAUTH2", lambda _: xoauth2(USER, GOOD_TOKEN))
    typ, _ = imap.select("INBOX", readonly=True)
    assert typ == "OK"
    if first is not None:
        _, data = imap.fetch("1", "(BODY.PEEK[])")
        assert next(d for d in data if isinstance(d, tuple))[1] == first
    imap.logout()
    pop = poplib.POP3("127.0.0.1", servers["pop3"].port)
    pop.stls(context=ca.client_context())
    auth = "AUTH XOAUTH2 " + base64.b64encode(xoauth2(USER, GOOD_TOKEN)).decode()
    assert pop._shortcmd(auth).startswith(b"+OK")  # type: ignore[attr-defined]
    pop.stat()
    pop.quit()
    smtp = smtplib.SMTP("127.0.0.1", servers["smtp"].port)
    smtp.starttls(context=ca.client_context())
    smtp.ehlo()
    code, _ = smtp.docmd("AUTH", "XOAUTH2 " + b64(xoauth2(USER, GOOD_TOKEN)))
    assert code == 235
    smtp.sendmail(USER, ["rcpt@example.org"], b"Subject: after the fuzz\r\n\r\nok\r\n")
    smtp.quit()
    assert servers["smtp"].outbox.snapshot()[-1].data == b"Subject: after the fuzz\r\n\r\nok\r\n"
