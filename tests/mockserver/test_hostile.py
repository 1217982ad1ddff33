"""Hostile clients get BAD/-ERR and the server keeps serving; injected faults do what they say."""

from __future__ import annotations

import base64
import imaplib
import json
import mailbox as stdlib_mailbox
import poplib
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.mockserver import Faults, InMemoryValidator, Mailbox
from tests.helpers.mailclients import PASSWORD, USER, Raw, ServerFactory, b64, oauthbearer, xoauth2


def test_overlong_lines_get_bad_and_the_session_continues(server: ServerFactory) -> None:
    imap = server("imap", max_line=4096)
    raw = Raw(imap.port)
    assert raw.ask(b"a1 NOOP " + b"x" * 100_000) == b"* BAD Command line too long"
    assert raw.ask("a2 NOOP") == b"a2 OK NOOP completed."
    pop = server("pop3", max_line=4096)
    raw3 = Raw(pop.port)
    assert raw3.ask(b"USER " + b"y" * 50_000) == b"-ERR Line too long."
    assert raw3.ask("CAPA") == b"+OK"


def test_long_token_with_sasl_ir(server: ServerFactory) -> None:
    token = "t" * 20_000  # O365-sized and then some
    validator = InMemoryValidator()
    validator.add(token, USER)
    imap = server("imap", validator=validator, profile="gmail")
    raw = Raw(imap.port)
    assert raw.ask(f"a AUTHENTICATE OAUTHBEARER {b64(oauthbearer(USER, token))}").startswith(
        b"a OK"
    )
    pop = server("pop3", validator=validator, profile="gmail")
    raw3 = Raw(pop.port)
    assert raw3.ask(f"AUTH XOAUTH2 {b64(xoauth2(USER, token))}") == b"+OK Welcome."
    assert token not in imap.transcripts[0].text() + pop.transcripts[0].text()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("ir", [True, False], ids=["sasl-ir", "continuation"])
def test_dovecot_profile_drops_sasl_responses_of_8192_bytes(
    server: ServerFactory, protocol: str, ir: bool
) -> None:
    """Dovecot's login processes drop a SASL response of 8192 bytes or more, unanswered."""
    validator = InMemoryValidator()
    ctrl = server(protocol, validator=validator)
    for size, dropped in ((8188, False), (8192, True)):
        token = "t" * (size * 3 // 4 - len(xoauth2(USER, "")))
        payload = b64(xoauth2(USER, token))
        assert len(payload) == size
        validator.add(token, USER)
        raw = Raw(ctrl.port)
        command = "a AUTHENTICATE XOAUTH2" if protocol == "imap" else "AUTH XOAUTH2"
        if ir:
            raw.send(f"{command} {payload}")
        else:
            assert raw.ask(command) == b"+ "
            raw.send(payload)
        if dropped:
            with pytest.raises((EOFError, ConnectionError)):
                raw.line()
        else:
            assert raw.line().startswith((b"a OK", b"+OK"))


@pytest.mark.parametrize(
    "line, reply",
    [
        (b"\x00\xff\xfe", b"* BAD Error in IMAP command received by server."),
        (b"a FROB", b"a BAD Error in IMAP command received by server."),
        (b"a LOGIN (unbalanced", b"a BAD Error in IMAP command LOGIN: unbalanced parentheses"),
        (
            b'a LOGIN "unterminated',
            b"a BAD Error in IMAP command LOGIN: unterminated quoted string",
        ),
        (b"a SELECT INBOX", b"a BAD Error in IMAP command received by server."),
        (b"a AUTHENTICATE XOAUTH2 !!!", b"a BAD Invalid base64 data in initial response"),
        (b"a AUTHENTICATE CRAM-MD5", b"a NO [ALERT] Unsupported authentication mechanism."),
        (b"a LOGIN (x) y", b"a BAD Invalid user name: a list."),
        (b"a LOGIN x (y)", b"a BAD Invalid password: a list."),
        (b"a LOGIN " + b"(" * 10_000, b"a BAD Error in IMAP command LOGIN: lists nested too "
         b"deeply"),
        (b"a AUTHENTICATE (XOAUTH2)", b"a BAD Error in IMAP command AUTHENTICATE: expected a "
         b"mechanism."),
        (b"a LOGIN {99999999}", b"* BAD Literal too large"),
    ],
    ids=lambda value: repr(value[:30]) if isinstance(value, bytes) else None,
)
def test_imap_garbage_before_login(server: ServerFactory, line: bytes, reply: bytes) -> None:
    imap = server("imap")
    raw = Raw(imap.port)
    assert raw.ask(line) == reply
    assert raw.ask("b NOOP") == b"b OK NOOP completed."


def test_imap_login_with_a_one_byte_literal(server: ServerFactory) -> None:
    imap = server("imap", passwords={"x": "y"})
    raw = Raw(imap.port)
    assert raw.ask("a LOGIN {1}") == b"+ OK"
    assert raw.ask("x y").startswith(b"a OK")
    raw = Raw(imap.port)
    assert raw.ask("b LOGIN {1}") == b"+ OK"
    assert raw.ask("x") == b"b BAD Error in IMAP command LOGIN: expected user and password."
    assert raw.ask("c NOOP") == b"c OK NOOP completed."


@pytest.mark.parametrize(
    "line, reply",
    [
        (b"SELECT (INBOX)", b"BAD Invalid mailbox name: a list."),
        (b'EXAMINE ((x))', b"BAD Invalid mailbox name: a list."),
        (b'STATUS (INBOX) (MESSAGES)', b"BAD Invalid mailbox name: a list."),
        (b'STATUS INBOX ((MESSAGES))', b"BAD Invalid STATUS item: a list."),
        (b'LIST "" "["', b"OK List completed."),
        (b'LIST "" "a{99999999999}"', b"OK List completed."),
        (b'LIST "" (x)', b"BAD Invalid pattern: a list."),
        (b'STORE 1 FLAGS ((x))', b"BAD Invalid flag: a list."),
        (b'SEARCH FROM (x)', b"BAD Error in IMAP command SEARCH: Invalid SEARCH argument: "
         b"expected a string, got a list"),
        (b'SEARCH LARGER (1)', b"BAD Error in IMAP command SEARCH: Invalid SEARCH argument: "
         b"expected a string, got a list"),
        (b'SEARCH LARGER 99999999999999999999999999', b"BAD Error in IMAP command SEARCH: "
         b"Invalid size."),
        (b"SEARCH " + b"NOT " * 5000 + b"ALL", b"BAD Error in IMAP command SEARCH: "
         b"SEARCH criteria nested too deeply."),
        (b"FETCH 1 (BODY[]<" + b"9" * 5000 + b">)", b"BAD Unknown or unsupported FETCH item "),
        (b"FETCH " + b"9" * 5000 + b" FLAGS", b"BAD Error in IMAP command: invalid sequence set"),
        (b"UID FETCH 1:" + b"9" * 5000 + b" FLAGS", b"BAD Error in IMAP command: invalid "
         b"sequence set"),
        (b"SEARCH " + b"9" * 5000, b"BAD Error in IMAP command SEARCH: invalid sequence set"),
    ],
    ids=lambda value: repr(value[:30]) if isinstance(value, bytes) else None,
)
def test_imap_garbage_after_login(server: ServerFactory, line: bytes, reply: bytes) -> None:
    raw = Raw(server("imap").port)
    assert raw.ask(f'a LOGIN {USER} "{PASSWORD}"').startswith(b"a OK")
    raw.send("b SELECT INBOX")
    while not raw.line().startswith(b"b OK"):
        pass
    raw.send(b"c " + line)
    while (got := raw.line()).startswith(b"* "):
        pass
    assert got.startswith(b"c " + reply), got
    assert raw.ask("d NOOP") == b"d OK NOOP completed."


def test_imap_selected_state_errors_and_literals(server: ServerFactory, mailbox: Mailbox) -> None:
    imap = server("imap", passwords={USER: 'pa "ss\\word'})
    raw = Raw(imap.port)
    pw = b'pa "ss\\word'
    assert raw.ask(f"a LOGIN {{{len(USER)}}}") == b"+ OK"
    assert raw.ask(f"{USER} {{{len(pw)}}}".encode()) == b"+ OK"
    assert raw.ask(pw).startswith(b"a OK")
    assert raw.ask("b SELECT INBOX").startswith(b"* FLAGS")
    while not raw.line().startswith(b"b OK"):
        pass
    assert raw.ask("c FETCH 99 FLAGS").startswith(b"c BAD")
    assert raw.ask("d FETCH 0:x FLAGS").startswith(b"d BAD")
    assert raw.ask("e FETCH 1 ENVELOPE").startswith(b"e BAD")
    assert raw.ask("f SEARCH FROBNICATE").startswith(b"f BAD")
    assert raw.ask("g UID SEARCH OR SEEN UNSEEN NOT DELETED") == b"* SEARCH 1 2 3 4 5 6 7"
    raw.line()
    assert raw.ask("h UID FETCH 2:3 (FLAGS)") == b"* 2 FETCH (UID 2 FLAGS ())"
    assert raw.line() == b"* 3 FETCH (UID 3 FLAGS ())"
    assert raw.line() == b"h OK Fetch completed."
    assert raw.ask(b"i FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.9>)") == (
        b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)]<0> {9}"
    )
    said = imap.transcripts[0].text()
    assert PASSWORD not in said and "ss\\word" not in said


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_wrong_answer_to_error_challenge_fails_and_is_recorded(
    server: ServerFactory, protocol: str
) -> None:
    """Like dovecot: any answer fails the login; the transcript says the answer was wrong."""
    ctrl = server(protocol)
    raw = Raw(ctrl.port)
    cmd = "a AUTHENTICATE" if protocol == "imap" else "AUTH"
    challenge = raw.ask(f"{cmd} XOAUTH2 {b64(xoauth2(USER, 'nope'))}")
    assert json.loads(base64.b64decode(challenge[2:]))["status"] == "401"
    reply = raw.ask(b64(xoauth2(USER, "nope")))  # a naive client re-sends its token
    assert reply in (
        b"a NO [AUTHENTICATIONFAILED] Authentication failed.",
        b"-ERR [AUTH] Authentication failed.",
    )
    assert len(ctrl.transcripts[0].violations) == 1
    assert "XOAUTH2 error challenge answered with" in ctrl.transcripts[0].violations[0]
    challenge = raw.ask(f"{cmd} OAUTHBEARER {b64(oauthbearer(USER, 'nope'))}")
    assert raw.ask("AQ==").startswith((b"a NO", b"-ERR"))  # the right answer: no violation
    assert len(ctrl.transcripts[0].violations) == 1


@pytest.mark.parametrize(
    "profile, imap_no, error",
    [
        (
            "gmail",
            b"a NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
            {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"},
        ),
        ("microsoft", b"a NO AUTHENTICATE failed.", None),
    ],
)
def test_profiles(server: ServerFactory, profile: str, imap_no: bytes, error: object) -> None:
    validator = InMemoryValidator()  # no required scope: the profile's default is announced
    ctrl = server("imap", profile=profile, validator=validator)
    raw = Raw(ctrl.port)
    reply = raw.ask(f"a AUTHENTICATE XOAUTH2 {b64(xoauth2(USER, 'nope'))}")
    if error is not None:
        assert json.loads(base64.b64decode(reply[2:])) == error
        reply = raw.ask("")
    assert reply == imap_no


def test_disconnect_mid_fetch(server: ServerFactory) -> None:
    ctrl = server("imap", faults="disconnect-mid-fetch")
    client = imaplib.IMAP4("127.0.0.1", ctrl.port)
    client.login(USER, PASSWORD)
    client.select("INBOX")
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        client.fetch("1", "(RFC822)")
    pop = server("pop3", faults=Faults(disconnect_mid_fetch=True))
    client3 = poplib.POP3("127.0.0.1", pop.port)
    client3.user(USER)
    client3.pass_(PASSWORD)
    with pytest.raises((poplib.error_proto, EOFError, OSError)):
        client3.retr(1)
    assert "fault: disconnect mid-RETR" in pop.transcripts[0].text()


def test_early_disconnect_and_disconnect_after(server: ServerFactory) -> None:
    ctrl = server("pop3", faults="early-disconnect")
    raw = Raw(ctrl.port)
    assert raw.greeting.startswith(b"+OK")
    with pytest.raises((EOFError, OSError)):
        raw.ask("CAPA")
    ctrl2 = server("imap", faults="disconnect-after=2")
    raw2 = Raw(ctrl2.port)
    assert raw2.ask("a NOOP") == b"a OK NOOP completed."
    assert raw2.ask("b NOOP") == b"b OK NOOP completed."
    with pytest.raises((EOFError, OSError)):
        raw2.ask("c NOOP")


def test_bad_base64_endless_malformed_overlong(server: ServerFactory) -> None:
    bad = server("imap", faults="bad-base64")
    raw = Raw(bad.port)
    challenge = raw.ask("a AUTHENTICATE XOAUTH2")
    with pytest.raises(ValueError):
        base64.b64decode(challenge[2:], validate=True)
    endless = server("pop3", faults="endless-continuations")
    raw = Raw(endless.port)
    for _ in range(50):
        assert raw.ask("AUTH XOAUTH2") == b"+ "
    hostile = server("imap", faults="malformed,overlong=200000,delay=0.001")
    raw = Raw(hostile.port)
    garbage = raw.ask("a NOOP")
    assert garbage.startswith(b"* \x00\xff")
    assert raw.line() == b"* " + b"x" * 200_000
    assert raw.line() == b"a OK NOOP completed."


def test_faults_parse() -> None:
    faults = Faults.parse("delay=0.5, disconnect-mid-fetch,overlong,disconnect-after=3")
    assert faults == Faults(
        delay=0.5, disconnect_mid_fetch=True, overlong=1 << 20, disconnect_after=3
    )
    assert Faults.parse(str(faults)) == faults
    with pytest.raises(ConfigError, match="unknown fault"):
        Faults.parse("explode")
    with pytest.raises(ConfigError, match="bad value"):
        Faults.parse("delay=soon")


def test_mailbox_sources(tmp_path: Path) -> None:
    msgs = [b"Subject: one\n\nbody 1\n", b"Subject: two\r\n\r\nbody 2\r\n"]
    flat = tmp_path / "flat"
    flat.mkdir()
    for n, data in enumerate(msgs):
        (flat / f"{n}.eml").write_bytes(data)
    md = stdlib_mailbox.Maildir(str(tmp_path / "md"))
    mb = stdlib_mailbox.mbox(str(tmp_path / "mbox"))
    for data in msgs:
        md.add(data)
        mb.add(data)
    mb.flush()
    for source in (flat, tmp_path / "md", tmp_path / "mbox"):
        box = Mailbox.from_path(source)
        got = sorted(m.data for m in box.snapshot())
        assert got == [b"Subject: one\r\n\r\nbody 1\r\n", b"Subject: two\r\n\r\nbody 2\r\n"], source
        assert [m.uid for m in box.snapshot()] == [1, 2]
    with pytest.raises(ConfigError):
        Mailbox.from_path(tmp_path / "missing")
    again = Mailbox.generate(3, 5000).snapshot()[2].data
    assert again == Mailbox.generate(3, 5000).snapshot()[2].data
