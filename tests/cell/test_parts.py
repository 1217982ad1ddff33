"""The pieces of a cell that need no container: seeds, delivery rule, leak finder, rc files."""

from __future__ import annotations

import base64

import pytest

from harness.cell.checks import failure_reason
from harness.cell.mail import (
    USER,
    auth_attempts,
    expected_delivery,
    find_leaks,
    message_id,
    seed_messages,
    token_forms,
)
from harness.cell.model import Cell
from harness.cell.rcfile import rcfile

TOKEN = "ya29.a0AfB_byC-xYz0123456789_abcdefghijklmnopqrstuvwxyzABCDEFG"


def test_seeds_cover_the_awkward_cases() -> None:
    msgs = seed_messages(1, 4)
    assert len({message_id(expected_delivery(m)) for m in msgs}) == 4
    assert all(b"\r\n" in m and b"\n" not in m.replace(b"\r\n", b"") for m in msgs)
    assert any(b"\r\n.\r\n" in m for m in msgs)  # a lone dot line (POP3 dot-stuffing)
    assert any(max(len(line) for line in m.split(b"\r\n")) > 5000 for m in msgs)
    assert any(bytes(range(0x80, 0x100)) in m for m in msgs)  # 8-bit body
    assert seed_messages(5, 1)[0] == seed_messages(1, 5)[4]  # numbering is stable


def test_delivery_rule_is_crlf_to_lf_only() -> None:
    msg = seed_messages(2, 1)[0]
    want = expected_delivery(msg)
    assert b"\r" not in want
    assert want.count(b"\n") == msg.count(b"\r\n")
    assert message_id(want) == "<fmh-2@example.org>"


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_leak_finder_sees_base64_sasl_strings(mechanism: str) -> None:
    sasl = (f"user={USER}\x01auth=Bearer {TOKEN}\x01\x01" if mechanism == "xoauth2"
            else f"n,a={USER},\x01auth=Bearer {TOKEN}\x01\x01")
    line = "IMAP> A0001 AUTHENTICATE X " + base64.b64encode(sasl.encode()).decode()
    assert find_leaks(line, [TOKEN])
    assert find_leaks(f"pass {TOKEN} ok", [TOKEN])
    assert not find_leaks("IMAP> A0001 AUTHENTICATE XOAUTH2 *", [TOKEN])


@pytest.mark.parametrize("prefix", ["", "a", "ab", "user=someone-else\x01auth=Bearer "])
def test_leak_finder_any_alignment(prefix: str) -> None:
    """The token inside any base64 blob is found, whatever precedes it."""
    blob = base64.b64encode(prefix.encode() + TOKEN.encode() + b"\x01\x01").decode()
    assert find_leaks(f"C: {blob}", [TOKEN])
    urlsafe = base64.urlsafe_b64encode(prefix.encode() + TOKEN.encode()).decode()
    assert find_leaks(urlsafe, [TOKEN])


def test_token_forms_are_not_trivially_short() -> None:
    assert all(len(f) >= 16 for f in token_forms(TOKEN))


def test_auth_attempts_parsing() -> None:
    imap = "C: A0001 AUTHENTICATE XOAUTH2 <redacted>\nS: A0001 NO x\nC: A0002 LOGIN u p"
    assert auth_attempts(imap, "imap") == (["XOAUTH2"], ["LOGIN"])
    pop = "C: CAPA\nC: AUTH\nC: AUTH OAUTHBEARER <redacted>\nC: USER u\nC: PASS x"
    assert auth_attempts(pop, "pop3") == (["OAUTHBEARER"], ["USER", "PASS"])


def test_rcfile_keywords_per_family() -> None:
    patched = rcfile(Cell.parse("6.4.33-oauth64-bookworm-pop3-xoauth2-starttls"), 1110,
                     keep=True)
    assert "protocol POP3 port 1110 auth xoauth2" in patched
    assert "sslproto 'TLS1.2+'" in patched and "\n  ssl " not in patched
    assert "keep" in patched.split() and "passwordfile" in patched
    implicit = rcfile(Cell.parse("6.4.33-oauth64-bookworm-imap-oauthbearer-tls"), 993,
                      keep=False)
    assert "ssl sslproto" in implicit and "no keep" in implicit
    native = rcfile(Cell.parse("next-native-bookworm-imap-oauthbearer-starttls"), 143,
                    keep=False)
    assert 'sslmode "starttls=must"' in native
    for text in (patched, implicit, native):
        assert "set invisible" in text and "no rewrite" in text and "sslcertck" in text


@pytest.mark.parametrize(
    ("ident", "expect", "absent"),
    [
        ("6.3.26-oauth63-bookworm-imap-xoauth2-starttls",
         ["poll 127.0.0.1 ", "sslproto tls1", 'sslcertfile "/fmh-host/in/ca.pem"', "sslcommonname"],
         ["\n  ssl ", "TLS1.2+"]),
        ("6.3.12-oauth63-10-bookworm-pop3-xoauth2-tls",
         ["poll 127.0.0.1 ", "  ssl sslcertck", 'sslcertpath "/fmh/certs"', "sslcommonname"],
         ["sslcertfile", "sslproto"]),
        ("6.3.5-oauth63-5-bookworm-imap-oauthbearer-tls",
         ["poll localhost ", 'sslcertpath "/fmh/certs"'], ["sslcommonname", "sslcertfile"]),
        ("6.5.0.beta7-oauth65-trixie-imap-xoauth2-starttls",
         ["sslproto 'TLS1.2+'", "sslcertfile"], ["\n  ssl ", "sslmode"]),
    ],
)
def test_rcfile_follows_the_version(ident: str, expect: list[str], absent: list[str]) -> None:
    text = rcfile(Cell.parse(ident), 10143, keep=False)
    for needle in expect:
        assert needle in text, needle
    for needle in absent:
        assert needle not in text, needle


CERT_CHATTER = """\
fetchmail: 6.4.33 querying 127.0.0.1 (protocol IMAP) at Tue Dec  1 10:57:28 2026: poll started
Trying to connect to 127.0.0.1/34567...connected.
fetchmail: Server certificate:
fetchmail: Issuer Organization: fetchmail-harness test CA
fetchmail: Unknown Issuer CommonName
fetchmail: Subject CommonName: localhost
"""


def test_failure_reason_is_the_servers_refusal_of_the_login() -> None:
    text = CERT_CHATTER + """\
fetchmail: IMAP< * OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] Dovecot (Debian) ready.
fetchmail: IMAP> A0001 AUTHENTICATE XOAUTH2 <token hidden>
fetchmail: IMAP< A0001 BAD malformed XOAUTH2 response
fetchmail: XOAUTH2 authentication failed: A0001 BAD malformed XOAUTH2 response
fetchmail: IMAP> A0002 LOGOUT
fetchmail: IMAP< A0002 OK Logout completed.
fetchmail: Authorization failure on user@example.org@127.0.0.1
"""
    assert failure_reason(text) == "fetchmail: IMAP< A0001 BAD malformed XOAUTH2 response"
    pop3 = CERT_CHATTER + """\
fetchmail: POP3> AUTH OAUTHBEARER <token hidden>
fetchmail: POP3< -ERR [SYS/TEMP] Temporary authentication failure.
fetchmail: POP3> QUIT
fetchmail: POP3< +OK Logging out
"""
    assert failure_reason(pop3).endswith("POP3< -ERR [SYS/TEMP] Temporary authentication failure.")


def test_failure_reason_without_a_login_skips_certificate_details() -> None:
    refused = CERT_CHATTER + "fetchmail: connection to 127.0.0.1:1 failed: Connection refused.\n"
    assert failure_reason(refused).endswith("failed: Connection refused.")
    only_tls = "fetchmail: Server certificate verification error: self-signed certificate\n"
    assert failure_reason(CERT_CHATTER + only_tls) == only_tls.strip()
    assert failure_reason("one\nlast line\n") == "last line"
