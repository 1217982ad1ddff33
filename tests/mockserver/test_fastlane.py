"""Commands answered straight from the read callback (fastlane.py) keep their order and bytes."""

from __future__ import annotations

import socket
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from harness.mockserver import Mailbox, MailServerController
from harness.mockserver import session as session_module
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


def count_suspended(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record each fast-lane command that had to wait (and so finishes as a task)."""
    finished: list[object] = []
    finish = session_module.finish

    def counting_finish(coro: Coroutine[Any, Any, None], awaited: object) -> Any:
        finished.append(awaited)
        return finish(coro, awaited)

    monkeypatch.setattr(session_module, "finish", counting_finish)
    return finished


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


def test_big_fetch_waits_for_a_slow_reader_and_keeps_order(
    server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FETCH answered in the fast lane that must wait for the client to read (the send
    buffer is full) finishes as a task; the next command is answered after it."""
    finished = count_suspended(monkeypatch)
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
    assert finished, "the FETCH never had to wait: this test did not test the suspended path"
    raw.close()


def test_server_stops_while_a_fast_fetch_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    finished = count_suspended(monkeypatch)
    box = Mailbox.generate(1000, 8192, seed=5)
    ctrl = MailServerController("imap", mailbox=box, passwords={USER: PASSWORD}).start()
    raw = slow_reader(ctrl.port)
    raw.sock.sendall(b"c FETCH 1:* (BODY.PEEK[])\r\n")
    for _ in range(200):  # wait (not a timing check) until the FETCH is stuck
        if finished:
            break
        time.sleep(0.05)
    assert finished, "the FETCH never had to wait"
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
