"""The mock SMTP submission server with Python's smtplib and curl: STARTTLS (587 style) and
implicit TLS (465 style), AUTH XOAUTH2 / OAUTHBEARER (initial response and continuation, the
error challenge), byte-exact storage, temporary failures, dovecot's limits."""

from __future__ import annotations

import base64
import json
import shutil
import smtplib
import subprocess
from pathlib import Path

import pytest

from harness.mockserver import InMemoryValidator, IntrospectionValidator, TestCA
from tests.helpers.mailclients import USER, Raw, ServerFactory, b64, oauthbearer, xoauth2
from tests.helpers.skips import skip_loudly

MESSAGE = (
    b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: relayed\r\n\r\n"
    b".a line that starts with a dot\r\n..and one with two\r\n.\r\nbody end\r\n"
)


def smtp_client(ctrl_port: int, tls: str, ca: TestCA) -> smtplib.SMTP:
    if tls == "implicit":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            "127.0.0.1", ctrl_port, context=ca.client_context()
        )
        client.ehlo()
        return client
    client = smtplib.SMTP("127.0.0.1", ctrl_port)
    client.ehlo()
    assert client.has_extn("starttls")
    client.starttls(context=ca.client_context())
    client.ehlo()
    return client


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
@pytest.mark.parametrize("initial", [True, False], ids=["initial-response", "continuation"])
def test_smtplib_submits_byte_exact(
    server: ServerFactory, ca: TestCA, tokens: dict[str, str], tls: str, mech: str, initial: bool
) -> None:
    ctrl = server("smtp", tls=tls)
    client = smtp_client(ctrl.port, tls, ca)
    assert client.ehlo_resp is not None
    assert "AUTH PLAIN XOAUTH2 OAUTHBEARER" in client.ehlo_resp.decode()
    payload = (xoauth2 if mech == "XOAUTH2" else oauthbearer)(USER, tokens["good"])
    code, text = client.auth(
        mech, lambda challenge=None: payload.decode(), initial_response_ok=initial
    )
    assert (code, text) == (235, b"2.7.0 Logged in.")
    client.sendmail(USER, ["bob@example.org", "carol@example.org"], MESSAGE)
    client.quit()
    (got,) = ctrl.outbox.snapshot()
    assert got.data == MESSAGE  # smtplib dot-stuffed it; the server undid that
    assert (got.mail_from, got.rcpt_to) == (USER, ("bob@example.org", "carol@example.org"))
    assert (got.user, got.mechanism, got.tls) == (USER, mech, True)
    said = ctrl.transcripts[0].text()
    assert tokens["good"] not in said and b64(payload) not in said
    assert ("C: AUTH " + mech + " <redacted>" in said) == initial


@pytest.mark.parametrize("mech, answer", [("XOAUTH2", ""), ("OAUTHBEARER", "AQ==")])
def test_bad_token_gets_the_error_challenge_then_535(
    server: ServerFactory, tokens: dict[str, str], mech: str, answer: str
) -> None:
    ctrl = server("smtp")
    raw = Raw(ctrl.port)
    raw.send("EHLO client")
    while raw.line().startswith(b"250-"):
        pass
    payload = (xoauth2 if mech == "XOAUTH2" else oauthbearer)(USER, tokens["expired"])
    challenge = raw.ask(f"AUTH {mech} {b64(payload)}")
    assert challenge.startswith(b"334 ")
    error = json.loads(base64.b64decode(challenge[4:]))
    assert error["status"] == ("401" if mech == "XOAUTH2" else "invalid_token")
    assert raw.ask(answer) == b"535 5.7.8 Authentication failed."
    assert ctrl.transcripts[0].violations == []
    assert raw.ask("MAIL FROM:<alice@example.com>") == b"530 5.7.0 Authentication required."
    # a client that answers the challenge wrongly fails the same way, and it is recorded
    assert raw.ask(f"AUTH {mech} {b64(payload)}").startswith(b"334 ")
    assert raw.ask(b64(payload)) == b"535 5.7.8 Authentication failed."
    assert len(ctrl.transcripts[0].violations) == 1


def test_token_validation_down_is_454_without_challenge(
    server: ServerFactory, tokens: dict[str, str]
) -> None:
    dead = IntrospectionValidator("http://127.0.0.1:9/introspect", "x", "y", timeout=2)
    for ctrl in (server("smtp", validator=dead), server("smtp", faults="validation-down")):
        raw = Raw(ctrl.port)
        raw.send("EHLO client")
        while raw.line().startswith(b"250-"):
            pass
        reply = raw.ask(f"AUTH XOAUTH2 {b64(xoauth2(USER, tokens['good']))}")
        assert reply.startswith(b"454 4.7.0 Temporary authentication failure. [")
        assert raw.ask("NOOP") == b"250 2.0.0 OK"


def test_bdat_chunks_and_sequence_errors(server: ServerFactory, tokens: dict[str, str]) -> None:
    ctrl = server("smtp")
    raw = Raw(ctrl.port)
    assert raw.ask("MAIL FROM:<a@b>") == b"503 5.5.0 Bad sequence of commands"  # no EHLO yet
    raw.send("EHLO client")
    while raw.line().startswith(b"250-"):
        pass
    assert raw.ask(f"AUTH XOAUTH2 {b64(xoauth2(USER, tokens['good']))}").startswith(b"235")
    assert raw.ask("AUTH XOAUTH2") == b"503 5.5.0 Already authenticated"
    assert raw.ask("RCPT TO:<b@c>") == b"503 5.5.0 MAIL needed first"
    assert raw.ask("MAIL FROM:<a@b> BODY=8BITMIME") == b"250 2.1.0 Ok"
    assert raw.ask("DATA") == b"554 5.5.0 No valid recipients"
    assert raw.ask("RCPT TO:<b@c>") == b"250 2.1.5 Ok"
    raw.sock.sendall(b"BDAT 5\r\n.a\r\nbBDAT 3 LAST\r\nc\r\n")
    assert raw.line() == b"250 2.0.0 5 octets received"
    assert raw.line() == b"250 2.0.0 Ok: queued as mock1"
    assert ctrl.outbox.snapshot()[0].data == b".a\r\nbc\r\n"  # BDAT bytes are not unstuffed


def test_dovecot_limits_refuse_long_lines_and_the_session_goes_on(server: ServerFactory) -> None:
    validator = InMemoryValidator()
    ctrl = server("smtp", validator=validator)
    raw = Raw(ctrl.port)
    raw.send("EHLO client")
    while raw.line().startswith(b"250-"):
        pass
    for size, accepted in ((1016, True), (1020, False)):  # "XOAUTH2 " + base64: 1024 bytes
        token = "t" * (size * 3 // 4 - len(xoauth2(USER, "")))
        validator.add(token, USER)
        reply = raw.ask(f"AUTH XOAUTH2 {b64(xoauth2(USER, token))}")
        assert reply.startswith(b"235" if accepted else b"500 5.5.2 Line too long"), reply
        if accepted:  # log in again on a fresh session
            raw = Raw(ctrl.port)
            raw.send("EHLO client")
            while raw.line().startswith(b"250-"):
                pass
    for size, accepted in ((8192, True), (8196, False)):  # a continuation line: 8192
        token = "t" * (size * 3 // 4 - len(xoauth2(USER, "")))
        validator.add(token, USER)
        assert raw.ask("AUTH XOAUTH2") == b"334 "
        reply = raw.ask(b64(xoauth2(USER, token)))
        assert reply.startswith(b"235" if accepted else b"500 5.5.2 Line too long"), reply
        if accepted:
            raw = Raw(ctrl.port)
            raw.send("EHLO client")
            while raw.line().startswith(b"250-"):
                pass
    assert raw.ask("NOOP") == b"250 2.0.0 OK"
    gmail = server("smtp", validator=validator, profile="gmail", tls="plain")
    client = smtplib.SMTP("127.0.0.1", gmail.port)
    client.ehlo()
    long_token = "t" * 6000
    validator.add(long_token, USER)
    assert client.auth("XOAUTH2", lambda c=None: xoauth2(USER, long_token).decode())[0] == 235


@pytest.fixture
def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        skip_loudly("curl is not installed (apt-get install curl)")
    assert path is not None
    return path


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
@pytest.mark.parametrize("mechs", [None, ("XOAUTH2",)], ids=["preferred", "xoauth2-only"])
def test_curl_submits_with_oauth2_bearer(
    curl: str,
    server: ServerFactory,
    ca: TestCA,
    tokens: dict[str, str],
    tmp_path: Path,
    scheme: str,
    mechs: tuple[str, ...] | None,
) -> None:
    ctrl = server("smtp", tls="implicit" if scheme == "smtps" else "starttls", mechanisms=mechs)
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE)
    done = subprocess.run(
        [
            curl, "-sS", "--ssl-reqd", "--cacert", str(ca.ca_path),
            f"{scheme}://127.0.0.1:{ctrl.port}",
            "--oauth2-bearer", tokens["good"], "--user", f"{USER}:",
            "--mail-from", USER, "--mail-rcpt", "bob@example.org",
            "--upload-file", str(message),
        ],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    (got,) = ctrl.outbox.snapshot()
    assert got.data == MESSAGE and got.rcpt_to == ("bob@example.org",)
    assert got.mechanism == ("OAUTHBEARER" if mechs is None else "XOAUTH2")
    assert got.tls


def test_helo_gets_one_line_and_ehlo_the_extensions(server: ServerFactory) -> None:
    raw = Raw(server("smtp", tls="starttls").port)
    assert raw.ask("HELO client").startswith(b"250 ")
    assert raw.ask("EHLO client").startswith(b"250-")
    extensions = [raw.line() for _ in range(8)]
    assert extensions[-1] == b"250 PIPELINING" and b"250-STARTTLS" in extensions
    assert raw.ask("EHLO") == b"501 Missing hostname"
