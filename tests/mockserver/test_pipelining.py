"""Pipelined commands keep their order and bytes; a slow reader holds up only its own session;
bytes pipelined after STARTTLS are dropped; an idle client is let go."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from harness.mockserver import Mailbox, MailServerController, TestCA
from tests.helpers.mailclients import PASSWORD, USER, Raw, ServerFactory


def imap_selected(server: ServerFactory, **options: Any) -> Raw:
    imap = server("imap", **options)
    raw = Raw(imap.port)
    assert raw.ask(f'a LOGIN {USER} "{PASSWORD}"').startswith(b"a OK")
    raw.send("b SELECT INBOX")
    while not raw.line().startswith(b"b OK"):
        pass
    return raw


def test_pipelined_imap_commands_answer_in_order(server: ServerFactory, mailbox: Mailbox) -> None:
    raw = imap_selected(server)
    sizes = [m.size for m in mailbox.snapshot()]
    raw.sock.sendall(
        b"c1 FETCH 1 (UID)\r\nc2 NOOP\r\nc3 FETCH 2 (UID RFC822.SIZE)\r\n"
        b"c4 CAPABILITY\r\nc5 UID FETCH 3 (FLAGS)\r\nc6 FETCH 99 (UID)\r\n"
    )
    assert raw.line() == b"* 1 FETCH (UID 1)"
    assert raw.line() == b"c1 OK Fetch completed."
    assert raw.line() == b"c2 OK NOOP completed."
    assert raw.line() == b"* 2 FETCH (UID 2 RFC822.SIZE %d)" % sizes[1]
    assert raw.line() == b"c3 OK Fetch completed."
    assert raw.line().startswith(b"* CAPABILITY IMAP4rev1")
    assert raw.line().startswith(b"c4 OK")
    assert raw.line() == b"* 3 FETCH (UID 3 FLAGS ())"
    assert raw.line() == b"c5 OK Fetch completed."
    assert raw.line().startswith(b"c6 BAD")
    assert raw.ask("c7 LOGOUT") == b"* BYE Logging out"
    assert raw.line() == b"c7 OK Logout completed."


def test_command_split_across_segments(server: ServerFactory, mailbox: Mailbox) -> None:
    raw = imap_selected(server)
    raw.sock.sendall(b"c1 FETCH 2 (BODY.PEEK[]")
    time.sleep(0.05)  # two TCP segments: the first line is incomplete
    raw.sock.sendall(b")\r\nc2 FETCH 1 (UID)\r\n")
    data = mailbox.snapshot()[1].data
    assert raw.line() == b"* 2 FETCH (BODY[] {%d}" % len(data)
    assert raw.file.read(len(data)) == data
    assert raw.line() == b")"
    assert raw.line() == b"c1 OK Fetch completed."
    assert raw.line() == b"* 1 FETCH (UID 1)"
    assert raw.line() == b"c2 OK Fetch completed."


def slow_reader(port: int) -> Raw:
    """Logged in and EXAMINEd, with a tiny receive buffer: the server's sends soon block."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    raw = Raw.__new__(Raw)
    raw.sock, raw.file = sock, sock.makefile("rb")
    raw.greeting = raw.line()
    assert raw.ask(f'a LOGIN {USER} "{PASSWORD}"').startswith(b"a OK")
    raw.send("b EXAMINE INBOX")
    while not raw.line().startswith(b"b OK"):
        pass
    return raw


def test_big_fetch_waits_for_a_slow_reader_and_keeps_order(server: ServerFactory) -> None:
    """A FETCH that must wait for the client to read (the send buffer is full) goes on when
    it reads; the next command is answered after it."""
    box = Mailbox.generate(1000, 8192, seed=5)  # 8 MB: more than any socket buffer holds
    raw = slow_reader(server("imap", mailbox=box).port)
    raw.sock.sendall(b"c FETCH 1:* (BODY.PEEK[])\r\nd NOOP\r\n")
    time.sleep(0.2)  # let the server fill its buffers before this client reads anything
    for number, msg in enumerate(box.snapshot(), 1):
        assert raw.line() == b"* %d FETCH (BODY[] {%d}" % (number, msg.size)
        assert raw.file.read(msg.size) == msg.data
        assert raw.line() == b")"
    assert raw.line() == b"c OK Fetch completed."
    assert raw.line() == b"d OK NOOP completed."
    raw.close()


def test_a_slow_reader_stalls_no_other_session_and_the_server_stops(server: ServerFactory) -> None:
    box = Mailbox.generate(1000, 8192, seed=5)
    ctrl = MailServerController("imap", mailbox=box, passwords={USER: PASSWORD}).start()
    raw = slow_reader(ctrl.port)
    raw.sock.sendall(b"c FETCH 1:* (BODY.PEEK[])\r\n")
    assert raw.line().startswith(b"* 1 FETCH")  # it is under way, and then stuck on this client
    other = Raw(ctrl.port)
    assert other.ask("a NOOP") == b"a OK NOOP completed."
    thread = ctrl._thread
    assert thread is not None
    ctrl.stop()
    assert not thread.is_alive(), "the server did not stop while a command was waiting"
    assert ctrl.errors == []
    raw.close()


def test_pipelined_pop3_commands_answer_in_order(server: ServerFactory, mailbox: Mailbox) -> None:
    pop = server("pop3")
    raw = Raw(pop.port)
    assert raw.ask(f"USER {USER}") == b"+OK"
    assert raw.ask(f"PASS {PASSWORD}").startswith(b"+OK")
    msgs = mailbox.snapshot()
    raw.sock.sendall(b"STAT\r\nLIST 2\r\nDELE 3\r\nRETR 3\r\nRETR 1\r\nQUIT\r\n")
    assert raw.line() == b"+OK %d %d" % (len(msgs), sum(m.size for m in msgs))
    assert raw.line() == b"+OK 2 %d" % msgs[1].size
    assert raw.line() == b"+OK Marked to be deleted."
    assert raw.line() == b"-ERR Message is deleted."
    assert raw.line() == b"+OK %d octets" % msgs[0].size
    body = b""
    while (line := raw.file.readline()) != b".\r\n":
        body += line[1:] if line.startswith(b"..") else line
    assert body == msgs[0].data
    assert raw.line() == b"+OK Logging out, messages deleted."
    assert [m.uid for m in mailbox.expunged] == [3]
    assert msgs[0].uid in mailbox.seen_uids()


@pytest.mark.parametrize(
    "protocol, starttls, after",
    [
        ("imap", b"a STARTTLS", b"b CAPABILITY"),
        ("pop3", b"STLS", b"CAPA"),
        ("smtp", b"STARTTLS", b"EHLO evil"),
    ],
)
def test_bytes_pipelined_after_starttls_are_dropped(
    server: ServerFactory, ca: TestCA, protocol: str, starttls: bytes, after: bytes
) -> None:
    """CVE-2011-0411: what came in the clear with STARTTLS is not answered inside TLS."""
    ctrl = server(protocol, tls="starttls")
    raw = Raw(ctrl.port)
    if protocol == "smtp":
        raw.send("EHLO client")
        while raw.line().startswith(b"250-"):
            pass
    raw.sock.sendall(starttls + b"\r\n" + after + b"\r\n")  # one segment
    assert raw.line().startswith((b"a OK", b"+OK", b"220 "))
    raw.starttls(ca.client_context())
    raw.send(b"NOOP" if protocol != "imap" else b"c NOOP")
    reply = raw.line()  # the first reply inside TLS answers NOOP, not the pipelined command
    assert reply in (b"c OK NOOP completed.", b"-ERR Unknown command.", b"250 2.0.0 OK"), reply
    said = ctrl.transcripts[0]
    assert said.violations == [f"{len(after) + 2} bytes pipelined after STARTTLS (discarded)"]


@pytest.mark.parametrize("protocol, bye", [
    ("imap", b"* BYE Disconnected for inactivity."),
    ("pop3", b"-ERR Disconnected for inactivity."),
    ("smtp", b"421 4.4.2 Disconnected for inactivity"),
])
def test_an_idle_client_is_let_go(server: ServerFactory, protocol: str, bye: bytes) -> None:
    ctrl = server(protocol, idle_timeout=0.2)
    raw = Raw(ctrl.port)
    raw.sock.settimeout(30)
    assert raw.line() == bye  # said after the timeout; this waits for it, it does not time it
    with pytest.raises(EOFError):
        raw.line()
    assert "idle for 0.2 s" in ctrl.transcripts[0].text()
