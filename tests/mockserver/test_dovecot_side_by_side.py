"""The same conversations with Debian's Dovecot 2.3 and with the mock: the same replies.

Dovecot validates over RFC 7662 at the same mock provider (passdb oauth2, introspection_mode
= post) for IMAP, POP3 and SMTP submission (relaying to a mock SMTP sink); the mock runs the
"dovecot" profile through a MockStack configured like that Dovecot (no password logins,
XOAUTH2 and OAUTHBEARER). Only Dovecot's timestamps and post-login capabilities are masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.mockserver import IntrospectionValidator, Mailbox, MailServerController
from harness.mockserver.dovecot import DovecotInstance, free_port
from harness.mockserver.oauth_provider import MockOAuthProvider
from harness.mockserver.stack import MockStack
from tests.helpers.mailclients import USER, Raw, b64, oauthbearer, xoauth2
from tests.helpers.skips import need_dovecot

STAMP = re.compile(rb" \[[^\]]*:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]$")
CAPS = re.compile(rb"^a OK \[CAPABILITY [^\]]*\] ")
RECEIVED = re.compile(rb"^Received: .*?\r\n(?=\S)", re.S)
PROTOCOLS = ("imap", "pop3", "smtp")
MECHS = ("XOAUTH2", "OAUTHBEARER")


@dataclass
class Peers:
    provider: MockOAuthProvider
    ports: dict[str, dict[str, int]]  # "dovecot" / "mock" -> protocol -> port
    sink: MailServerController  # where dovecot's submission relays to
    mock: MockStack


def dovecot_like_mock(**options: object) -> MockStack:
    messages = [m.data for m in Mailbox.generate(3).snapshot()]
    return MockStack(
        PROTOCOLS,
        tls="plain",
        user=USER,
        mailbox=Mailbox(messages),
        allow_login=False,
        mechanisms=MECHS,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    need_dovecot()
    messages = [m.data for m in Mailbox.generate(3).snapshot()]
    with (
        dovecot_like_mock() as mock,
        MailServerController("smtp", require_auth=False) as sink,
    ):
        provider = mock.provider
        cid, secret = provider.resource_credentials
        with DovecotInstance(
            provider.introspection_url, cid, secret, USER, messages, submission_relay=sink.port
        ) as dc:
            yield Peers(
                provider,
                {
                    "dovecot": {"imap": dc.imap_port, "pop3": dc.pop3_port,
                                "smtp": dc.submission_port},
                    "mock": {p: mock[p].port for p in PROTOCOLS},
                },
                sink,
                mock,
            )


def opened(port: int, protocol: str) -> tuple[Raw, list[bytes]]:
    """A connection past its greeting (and EHLO for SMTP), and what the server said so far."""
    raw = Raw(port)
    said = [raw.greeting]
    if protocol == "smtp":
        said += ehlo(raw)
    return raw, said


def ehlo(raw: Raw, name: str = "client.example") -> list[bytes]:
    raw.send(f"EHLO {name}")
    lines = [raw.line()]
    while lines[-1].startswith(b"250-"):
        lines.append(raw.line())
    return lines


def normal(line: bytes) -> bytes:
    return CAPS.sub(b"a OK ", STAMP.sub(b"", line))


def auth_command(protocol: str, mech: str) -> str:
    return f"a AUTHENTICATE {mech}" if protocol == "imap" else f"AUTH {mech}"


def converse(port: int, protocol: str, lines: list[str]) -> list[bytes]:
    """Send each line, one reply line each (greeting and EHLO included); normalised."""
    raw, said = opened(port, protocol)
    for line in lines:
        try:
            said.append(raw.ask(line))
        except (EOFError, ConnectionError):
            said.append(b"<connection closed>")
            break
    raw.close()
    return [normal(line) for line in said]


def login(port: int, protocol: str, mech: str, payload: bytes, ir: bool) -> list[bytes]:
    """Authenticate like a well-behaved client; the server's lines."""
    raw, said = opened(port, protocol)
    command = auth_command(protocol, mech)
    reply = raw.ask(f"{command} {b64(payload)}" if ir else command)
    if not ir and reply.rstrip() in (b"+", b"334"):
        said.append(reply)
        reply = raw.ask(b64(payload))
    if reply.startswith((b"+ ", b"334 ")) and len(reply) > 4:  # the error challenge
        said.append(reply)
        reply = raw.ask("" if mech == "XOAUTH2" else "AQ==")
    said.append(reply)
    raw.close()
    return [normal(line) for line in said]


CASES = ["good", "bad", "expired", "other-user", "wrong-scope", "unavailable"]


@pytest.mark.parametrize("ir", [True, False], ids=["initial-response", "continuation"])
@pytest.mark.parametrize("mech", MECHS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", CASES)
def test_same_outcome_as_dovecot(
    peers: Peers, case: str, protocol: str, mech: str, ir: bool
) -> None:
    provider = peers.provider
    user = "bob@example.com" if case == "other-user" else USER
    grant = provider.mint_token(user, scope="openid" if case == "wrong-scope" else "mail")
    token = "not-a-token" if case == "bad" else grant["access_token"]
    if case == "expired":
        provider.expire(token)
    payload = (xoauth2 if mech == "XOAUTH2" else oauthbearer)(USER, token)
    answers = {}
    for name in ("dovecot", "mock"):
        if case == "unavailable":
            provider.inject("introspect", "status", status=503, count=1)
        answers[name] = login(peers.ports[name][protocol], protocol, mech, payload, ir)
    provider.clear_faults()
    assert answers["mock"] == answers["dovecot"]
    last = answers["mock"][-1]
    if case == "good":
        assert last.startswith((b"a OK", b"+OK", b"235 "))
    else:
        assert last.startswith((b"a NO", b"-ERR", b"535 ", b"454 "))
        challenged = any(line.startswith((b"+ eyJ", b"334 eyJ")) for line in answers["mock"])
        assert challenged == (case != "unavailable")


def token_of(peers: Peers) -> str:
    return str(peers.provider.mint_token(USER)["access_token"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_any_answer_to_the_error_challenge_fails_and_the_mock_records_a_wrong_one(
    peers: Peers, protocol: str
) -> None:
    bad = b64(xoauth2(USER, "not-a-token"))
    lines = [f"{auth_command(protocol, 'XOAUTH2')} {bad}", bad,  # re-sends its token
             f"{auth_command(protocol, 'OAUTHBEARER')} {b64(oauthbearer(USER, 'x'))}", "AQ=="]
    before = len(peers.mock[protocol].transcripts)
    got = {name: converse(peers.ports[name][protocol], protocol, lines) for name in peers.ports}
    assert got["mock"] == got["dovecot"]
    assert got["mock"][-1].startswith((b"a NO", b"-ERR", b"535"))
    (session,) = peers.mock[protocol].transcripts[before:]
    assert len(session.violations) == 1 and "XOAUTH2" in session.violations[0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oauthbearer_without_authzid_fails_at_once(peers: Peers, protocol: str) -> None:
    gs2 = b"n,,\x01host=127.0.0.1\x01port=143\x01auth=Bearer " + token_of(peers).encode()
    payload = b64(gs2 + b"\x01\x01")
    lines = [f"{auth_command(protocol, 'OAUTHBEARER')} {payload}"]
    got = {name: converse(peers.ports[name][protocol], protocol, lines) for name in peers.ports}
    assert got["mock"] == got["dovecot"]
    assert got["mock"][-1].startswith((b"a NO [AUTHENTICATIONFAILED]", b"-ERR [AUTH]", b"535"))


@pytest.mark.parametrize("ir", [True, False], ids=["initial-response", "continuation"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_same_sasl_response_size_limits(peers: Peers, protocol: str, ir: bool) -> None:
    """IMAP/POP3 drop a response of 8192 bytes or more; SMTP refuses AUTH parameters over
    1024 bytes and a continuation line over 8192, and goes on."""
    smtp_sizes = (1016, 1020) if ir else (8192, 8196)
    for size in smtp_sizes if protocol == "smtp" else (8188, 8192):
        token = "t" * (size * 3 // 4 - len(xoauth2(USER, "")))
        payload = b64(xoauth2(USER, token))
        assert len(payload) == size
        command = auth_command(protocol, "XOAUTH2")
        lines = [f"{command} {payload}"] if ir else [command, payload]
        lines.append("" if protocol != "imap" else "z NOOP")  # the session still there?
        got = {name: converse(peers.ports[name][protocol], protocol, lines)
               for name in peers.ports}
        assert got["mock"] == got["dovecot"], size


def test_pop3_capa_user_and_pass_without_password_logins(peers: Peers) -> None:
    lines = ["CAPA", "USER alice", "PASS secret", "NOOP", "", "AUTH", "QUIT"]
    got = {}
    for name, ports in peers.ports.items():
        raw, said = opened(ports["pop3"], "pop3")
        for line in lines:
            raw.send(line)
            said.append(raw.line())
            if line in ("CAPA", "AUTH"):
                while said[-1] != b".":
                    said.append(raw.line())
        got[name] = said
    assert got["mock"] == got["dovecot"]
    assert b"CAPA" in got["mock"] and b"USER" in got["mock"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_same_errors_before_login(peers: Peers, protocol: str) -> None:
    command = auth_command(protocol, "XOAUTH2")
    lines = [
        auth_command(protocol, "CRAM-MD5"),
        f"{command} !!!",
        command, "*",
        command, "!!!",
        f"{command} =",
    ]
    if protocol == "imap":
        lines += ["b LOGIN alice secret", "c FROB", "d CAPABILITY"]
    elif protocol == "pop3":
        lines += ["FROB", "STAT"]
    else:
        lines += ["MAIL FROM:<alice@example.com>", "RCPT TO:<bob@example.org>", "FROB", "NOOP"]
    got = {name: converse(peers.ports[name][protocol], protocol, lines) for name in peers.ports}
    assert got["mock"] == got["dovecot"]


def test_the_same_mail_relayed_byte_exact(peers: Peers) -> None:
    message = (b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: side by side\r\n\r\n"
               b".leading dot\r\n..two dots\r\nend\r\n")
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    token = token_of(peers)
    got = {}
    for name, ports in peers.ports.items():
        raw, said = opened(ports["smtp"], "smtp")
        said.append(raw.ask(f"AUTH XOAUTH2 {b64(xoauth2(USER, token))}"))
        said.append(raw.ask("MAIL FROM:<alice@example.com>"))
        said.append(raw.ask("RCPT TO:<bob@example.org>"))
        said.append(raw.ask("DATA"))
        raw.sock.sendall(stuffed + b".\r\n")
        said.append(raw.line())
        said.append(raw.ask("QUIT"))
        got[name] = said
    queued = re.compile(rb"^250 2\.0\.0 Ok: queued as mock\d+$")
    for said in got.values():
        said[-2] = queued.sub(b"250 2.0.0 Ok: queued", said[-2])
    assert got["mock"] == got["dovecot"]
    relayed = peers.sink.outbox.snapshot()[-1]
    accepted = peers.mock.outbox.snapshot()[-1]
    assert RECEIVED.sub(b"", relayed.data) == accepted.data == message
    assert (relayed.mail_from, relayed.rcpt_to) == (accepted.mail_from, accepted.rcpt_to)


# ---- configurations of their own ---------------------------------------------------------------
def test_token_validation_unreachable_is_the_same_temporary_failure(peers: Peers) -> None:
    """Dovecot whose introspection endpoint is unreachable, the mock validating at the same
    dead address, and the mock's validation-down fault: one answer."""
    dead = f"http://127.0.0.1:{free_port()}/introspect"
    token = token_of(peers)
    unreachable = IntrospectionValidator(dead, "x", "y", required_scope="mail")
    with (
        DovecotInstance(dead, "x", "y", USER, [], submission_relay=peers.sink.port) as dc,
        dovecot_like_mock(validator=unreachable) as mock,
        dovecot_like_mock(faults="validation-down") as faulty,
    ):
        for protocol in PROTOCOLS:
            ports = {
                "dovecot": {"imap": dc.imap_port, "pop3": dc.pop3_port,
                            "smtp": dc.submission_port}[protocol],
                "mock": mock[protocol].port,
                "fault": faulty[protocol].port,
            }
            for mech in MECHS:
                payload = (xoauth2 if mech == "XOAUTH2" else oauthbearer)(USER, token)
                got = {name: login(port, protocol, mech, payload, ir=True)
                       for name, port in ports.items()}
                assert got["mock"] == got["dovecot"] == got["fault"], (protocol, mech)
                assert got["mock"][-1] in (
                    b"a NO [UNAVAILABLE] Temporary authentication failure.",
                    b"-ERR [SYS/TEMP] Temporary authentication failure.",
                    b"454 4.7.0 Temporary authentication failure.",
                )


def test_xoauth2_only_profile_offers_what_dovecot_with_xoauth2_only_does(peers: Peers) -> None:
    provider = peers.provider
    cid, secret = provider.resource_credentials
    with (
        DovecotInstance(provider.introspection_url, cid, secret, USER, [],
                        mechanisms=("xoauth2",), submission_relay=peers.sink.port) as dc,
        MockStack(PROTOCOLS, tls="plain", user=USER, profile="dovecot-xoauth2",
                  allow_login=False) as mock,
    ):
        ports = {"dovecot": {"imap": dc.imap_port, "pop3": dc.pop3_port,
                             "smtp": dc.submission_port},
                 "mock": {p: mock[p].port for p in PROTOCOLS}}
        lines = {"imap": ["a CAPABILITY"], "pop3": ["AUTH"], "smtp": []}
        for protocol in PROTOCOLS:
            got = {name: converse(ports[name][protocol], protocol, lines[protocol])
                   for name in ports}
            assert got["mock"] == got["dovecot"]
        greeting = converse(ports["mock"]["imap"], "imap", [])[0]
        assert b"AUTH=XOAUTH2]" in greeting and b"OAUTHBEARER" not in greeting
        token = provider.mint_token(USER)["access_token"]
        for protocol in PROTOCOLS:
            fallback = {name: login(ports[name][protocol], protocol, "OAUTHBEARER",
                                    oauthbearer(USER, token), ir=True) for name in ports}
            assert fallback["mock"] == fallback["dovecot"]
            assert fallback["mock"][-1].startswith((b"a NO", b"-ERR", b"504"))


def test_pop3_in_use_as_dovecot_says_it_with_pop3_lock_session(peers: Peers) -> None:
    """Dovecot holds the second POP3 login 10 s for the lock, then refuses it and hangs up."""
    provider = peers.provider
    cid, secret = provider.resource_credentials
    token = token_of(peers)
    auth = f"AUTH XOAUTH2 {b64(xoauth2(USER, token))}"
    with (
        DovecotInstance(provider.introspection_url, cid, secret, USER, [],
                        pop3_lock_session=True) as dc,
        dovecot_like_mock(faults="in-use", validator=peers.mock.validator) as mock,
    ):
        holder, _ = opened(dc.pop3_port, "pop3")
        assert holder.ask(auth) == b"+OK Logged in."
        got = {}
        for name, port in (("dovecot", dc.pop3_port), ("mock", mock["pop3"].port)):
            raw, said = opened(port, "pop3")
            raw.sock.settimeout(60)
            said.append(raw.ask(auth))
            with pytest.raises((EOFError, ConnectionError)):
                raw.ask("STAT")
            got[name] = said
        holder.close()
    assert got["mock"] == got["dovecot"]
    assert got["mock"][-1] == b"-ERR [IN-USE] Mailbox is locked by another POP3 session."
