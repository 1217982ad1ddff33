"""imaplib and poplib against the mock: byte-exact fetches, every mechanism, TLS mode."""

from __future__ import annotations

import base64
import imaplib
import json
import poplib
from collections.abc import Callable

import pytest

from harness.mockserver import Mailbox, MailServerController, TestCA
from tests.helpers.mailclients import PASSWORD, USER, ServerFactory, b64, oauthbearer, xoauth2

MECHS = ["XOAUTH2", "OAUTHBEARER", "password"]


def imap_client(
    server: ServerFactory, ca: TestCA, tls: str
) -> tuple[imaplib.IMAP4, MailServerController]:
    ctrl = server("imap", tls=tls)
    if tls == "implicit":
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
            "127.0.0.1", ctrl.port, ssl_context=ca.client_context()
        )
    else:
        client = imaplib.IMAP4("127.0.0.1", ctrl.port)
        assert "STARTTLS" in client.capabilities
        client.starttls(ssl_context=ca.client_context())
    return client, ctrl


def sasl(mech: str, token: str, answers: list[bytes]) -> Callable[[bytes], bytes]:
    """An imaplib authobject: the initial response, then what to say to an error challenge."""
    seen: list[bytes] = []

    def respond(challenge: bytes) -> bytes:
        seen.append(challenge)
        if len(seen) == 1:
            return xoauth2(USER, token) if mech == "XOAUTH2" else oauthbearer(USER, token)
        answers.append(challenge)
        return b"" if mech == "XOAUTH2" else b"\x01"

    return respond


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
@pytest.mark.parametrize("mech", MECHS)
def test_imaplib_fetches_byte_exact(
    server: ServerFactory,
    ca: TestCA,
    mailbox: Mailbox,
    tokens: dict[str, str],
    tls: str,
    mech: str,
) -> None:
    client, ctrl = imap_client(server, ca, tls)
    if mech == "password":
        client.login(USER, PASSWORD)
    else:
        client.authenticate(mech, sasl(mech, tokens["good"], []))
    assert client.select("INBOX") == ("OK", [b"7"])
    typ, data = client.search(None, "UNSEEN", "NOT", "DELETED")
    assert data == [b"1 2 3 4 5 6 7"]
    expected = mailbox.snapshot()
    for n, msg in enumerate(expected, 1):
        typ, data = client.fetch(str(n), "(RFC822.SIZE BODY.PEEK[])")
        assert typ == "OK"
        (head, body), *_ = [d for d in data if isinstance(d, tuple)]
        assert body == msg.data
        assert f"RFC822.SIZE {msg.size}".encode() in head
    assert mailbox.seen_uids() == set()  # PEEK leaves \Seen alone
    typ, data = client.fetch("2:3", "(BODY[HEADER] BODY[TEXT])")
    pairs = [d for d in data if isinstance(d, tuple)]
    assert pairs[0][1] == expected[1].header and pairs[1][1] == expected[1].text
    assert mailbox.seen_uids() == {expected[1].uid, expected[2].uid}
    client.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    client.expunge()
    client.logout()
    assert expected[0].uid in mailbox.deleted_uids() and len(mailbox) == 6
    transcript = ctrl.transcripts[0].text()
    assert tokens["good"] not in transcript and b64(xoauth2(USER, tokens["good"])) not in transcript
    assert PASSWORD not in transcript


@pytest.mark.parametrize("kind", ["bad", "expired", "other", "noscope"])
@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_imaplib_bad_token_error_sequence(
    server: ServerFactory, ca: TestCA, tokens: dict[str, str], kind: str, mech: str
) -> None:
    client, ctrl = imap_client(server, ca, "starttls")
    challenges: list[bytes] = []
    with pytest.raises(imaplib.IMAP4.error, match=r"^\[AUTHENTICATIONFAILED\] Authentication"):
        client.authenticate(mech, sasl(mech, tokens[kind], challenges))
    assert len(challenges) == 1
    error = json.loads(challenges[0])
    if mech == "XOAUTH2":
        assert error == {"status": "401", "schemes": "bearer", "scope": "mail"}
    else:
        assert error == {"status": "invalid_token"}
    client.logout()
    said = ctrl.transcripts[0].lines
    assert any(" NO [AUTHENTICATIONFAILED] Authentication failed." in line for line in said)


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
@pytest.mark.parametrize("mech", MECHS)
def test_poplib_retrieves_byte_exact(
    server: ServerFactory,
    ca: TestCA,
    mailbox: Mailbox,
    tokens: dict[str, str],
    tls: str,
    mech: str,
) -> None:
    ctrl = server("pop3", tls=tls)
    if tls == "implicit":
        client: poplib.POP3 = poplib.POP3_SSL("127.0.0.1", ctrl.port, context=ca.client_context())
    else:
        client = poplib.POP3("127.0.0.1", ctrl.port)
        assert "STLS" in client.capa()
        client.stls(context=ca.client_context())
    if mech == "password":
        client.user(USER)
        client.pass_(PASSWORD)
    elif mech == "XOAUTH2":  # initial response on the AUTH line
        assert client._shortcmd("AUTH XOAUTH2 " + b64(xoauth2(USER, tokens["good"]))).startswith(  # type: ignore[attr-defined]
            b"+OK"
        )
    else:  # no initial response: empty challenge first
        assert client._shortcmd("AUTH OAUTHBEARER") == b"+ "  # type: ignore[attr-defined]
        assert client._shortcmd(b64(oauthbearer(USER, tokens["good"]))).startswith(b"+OK")  # type: ignore[attr-defined]
    expected = mailbox.snapshot()
    assert client.stat() == (7, sum(m.size for m in expected))
    for n, msg in enumerate(expected, 1):
        _, lines, _ = client.retr(n)
        assert b"\r\n".join(lines) + b"\r\n" == msg.data  # poplib undoes dot-stuffing
    client.dele(1)
    client.dele(2)
    assert len(mailbox) == 7  # deletes happen at QUIT
    client.quit()
    assert mailbox.deleted_uids() == {expected[0].uid, expected[1].uid}
    assert tokens["good"] not in ctrl.transcripts[0].text()


@pytest.mark.parametrize("kind", ["bad", "expired"])
@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_poplib_bad_token_error_sequence(
    server: ServerFactory, tokens: dict[str, str], kind: str, mech: str
) -> None:
    ctrl = server("pop3", tls="plain")
    client = poplib.POP3("127.0.0.1", ctrl.port)
    payload = xoauth2 if mech == "XOAUTH2" else oauthbearer
    client._putcmd(f"AUTH {mech} {b64(payload(USER, tokens[kind]))}")  # type: ignore[attr-defined]
    challenge = client._getline()[0]  # type: ignore[attr-defined]
    assert challenge.startswith(b"+ ")
    assert json.loads(base64.b64decode(challenge[2:]))["status"] in ("401", "invalid_token")
    client._putcmd("" if mech == "XOAUTH2" else "AQ==")  # type: ignore[attr-defined]
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\] Authentication failed\."):
        client._getresp()  # type: ignore[attr-defined]
    client.quit()


def test_introspection_unreachable_gives_temporary_failure(
    server: ServerFactory, tokens: dict[str, str]
) -> None:
    from harness.mockserver import IntrospectionValidator

    dead = IntrospectionValidator("http://127.0.0.1:9/introspect", "x", "y", timeout=2)
    imap = server("imap", validator=dead)
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    with pytest.raises(imaplib.IMAP4.error, match=r"^\[UNAVAILABLE\] Temporary"):
        client.authenticate("XOAUTH2", lambda _: xoauth2(USER, tokens["good"]))
    pop = server("pop3", validator=dead)
    client3 = poplib.POP3("127.0.0.1", pop.port)
    with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\]"):
        client3._shortcmd("AUTH XOAUTH2 " + b64(xoauth2(USER, tokens["good"])))  # type: ignore[attr-defined]
