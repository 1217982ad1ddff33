"""Which mechanisms 6.4.33 + oauth64 uses for a bearer token, and what it never does with one:
fetchmail 7's fallback to XOAUTH2, `auth any` with a passwordfile, no password methods after a
bearer attempt, no token without TLS, and a temporary server failure that is not a bad token."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.mockserver.controller import MailServerController
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.oauth_provider import MockOAuthProvider
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import InMemoryValidator, IntrospectionValidator
from tests.patches.accounts import (
    MESSAGES,
    NOTICE,
    USER,
    delivered,
    leaks,
    rcfile,
    token_file,
    wait_for,
)
from tests.patches.fetchmail_box import FetchmailBox

pytestmark = [pytest.mark.slow, pytest.mark.fetchmail_source, pytest.mark.docker]

PROTOCOLS = ["imap", "pop3"]
# what a client says to log in with a password, in the mock's transcript
PASSWORD_METHODS = re.compile(
    r"^C: (\S+ LOGIN |\S+ AUTHENTICATE PLAIN|AUTH PLAIN|USER |PASS |APOP )", re.MULTILINE)


def _bearer_attempts(server: MailServerController) -> list[str]:
    text = "\n".join(t.text() for t in server.transcripts)
    return re.findall(r"^C: (?:\S+ AUTHENTICATE|AUTH) (OAUTHBEARER|XOAUTH2)", text, re.MULTILINE)


def _password_attempts(server: MailServerController) -> list[str]:
    return PASSWORD_METHODS.findall("\n".join(t.text() for t in server.transcripts))


def _validator(token: str) -> InMemoryValidator:
    validator = InMemoryValidator()
    validator.add(token, USER)
    return validator


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oauthbearer_falls_back_to_xoauth2_like_fetchmail_7(
        patched_fetchmail: FetchmailBox, ca: TestCA, home: Path, protocol: str) -> None:
    """Microsoft 365 offers XOAUTH2 only; `auth oauthbearer` used to fail the login there."""
    token = secrets.token_urlsafe(40)
    token_file(home / "token", token)
    with MailServerController(protocol, tls="implicit", ca=ca, validator=_validator(token),
                              mailbox=Mailbox(MESSAGES), mechanisms=("PLAIN", "XOAUTH2")) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth="oauthbearer", ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach", "-v"], home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _bearer_attempts(server) == ["XOAUTH2"]
    assert delivered(home).count("Subject: test") == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("auth", ["any", "oauthbearer"])
def test_refused_token_gets_both_bearer_mechanisms_then_nothing(
        patched_fetchmail: FetchmailBox, ca: TestCA, home: Path, protocol: str,
        auth: str) -> None:
    """OAUTHBEARER, then XOAUTH2, then stop: the server would take the token as a password
    (the control run below proves it), but after a bearer attempt fetchmail never sends one."""
    token = secrets.token_urlsafe(40)
    token_file(home / "token", token)
    with MailServerController(protocol, tls="implicit", ca=ca, validator=InMemoryValidator(),
                              mailbox=Mailbox(MESSAGES), passwords={USER: token}) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth=auth, ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach", "-v"], home=home)
        log = result.stdout + result.stderr
        assert result.returncode == 3, log
        assert _bearer_attempts(server) == ["OAUTHBEARER", "XOAUTH2"], log
        assert _password_attempts(server) == [], log
        assert not leaks(log, token), log

        control = rcfile(home, port=server.port, protocol=protocol, auth="password", ca=ca,
                         name="control-rc")
        plain = patched_fetchmail.run(["-f", str(control), "--nodetach"], home=home)
        assert plain.returncode == 0, plain.stdout + plain.stderr
        assert _password_attempts(server), "the control run did not log in with a password"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_auth_any_with_passwordfile_needs_a_bearer_mechanism(
        patched_fetchmail: FetchmailBox, ca: TestCA, home: Path, protocol: str) -> None:
    """A server without OAUTHBEARER and XOAUTH2 gets no token, and no password either."""
    token = secrets.token_urlsafe(40)
    token_file(home / "token", token)
    with MailServerController(protocol, tls="implicit", ca=ca, validator=_validator(token),
                              mailbox=Mailbox(MESSAGES), mechanisms=("PLAIN",),
                              passwords={USER: token}) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth="any", ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach"], home=home)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "auth any logs in only with OAUTHBEARER or XOAUTH2" in result.stderr
    assert _bearer_attempts(server) == [] and _password_attempts(server) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("allowed", [False, True], ids=["default", "bearerwithouttls"])
def test_no_token_over_an_unencrypted_connection(
        patched_fetchmail: FetchmailBox, home: Path, protocol: str, allowed: bool) -> None:
    """RFC 6750 5.3, unless the rc file says bearerwithouttls."""
    token = secrets.token_urlsafe(40)
    token_file(home / "token", token)
    with MailServerController(protocol, tls="plain", validator=_validator(token),
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth="xoauth2", tls="plain",
                    server_options="bearerwithouttls" if allowed else "")
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach"], home=home)
    if allowed:
        assert result.returncode == 0, result.stdout + result.stderr
        assert _bearer_attempts(server) == ["XOAUTH2"]
    else:
        assert result.returncode == 3, result.stdout + result.stderr
        assert "unencrypted connection" in result.stderr
        assert _bearer_attempts(server) == [] and _password_attempts(server) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_trace_hides_the_token_without_looking_like_a_cancel(
        patched_fetchmail: FetchmailBox, ca: TestCA, home: Path, protocol: str) -> None:
    """`*` alone is the SASL cancellation; the token shows as `<token hidden>`, also when it
    goes in a continuation line (POP3 lines over 255 octets)."""
    token = secrets.token_urlsafe(600)
    token_file(home / "token", token)
    with MailServerController(protocol, tls="implicit", ca=ca, validator=_validator(token),
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth="oauthbearer", ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach", "-vv"], home=home)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    prefix = protocol.upper() + "> "
    sent = [line.split(prefix, 1)[1] for line in log.splitlines() if prefix in line]
    assert "<token hidden>" in " ".join(sent), log
    assert not [s for s in sent if s.rstrip().endswith("*")], log
    assert not leaks(log, token), log


# -- temporary failures ----------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[MockOAuthProvider]:
    with MockOAuthProvider() as the_provider:
        yield the_provider


def _introspecting(provider: MockOAuthProvider) -> IntrospectionValidator:
    """Validation at the provider (RFC 7662), as Dovecot does: when the provider answers 503
    the server says IMAP NO [UNAVAILABLE] / POP3 -ERR [SYS/TEMP]."""
    cid, secret = provider.resource_credentials
    return IntrospectionValidator(provider.introspection_url, cid, secret, required_scope="mail")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_temporary_failure_is_not_a_rejected_token(
        patched_fetchmail: FetchmailBox, ca: TestCA, home: Path, protocol: str,
        provider: MockOAuthProvider) -> None:
    token = provider.mint_token(USER, scope="mail")["access_token"]
    token_file(home / "token", token)
    provider.inject("introspect", "status", status=503, count=1)
    with MailServerController(protocol, tls="implicit", ca=ca, validator=_introspecting(provider),
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth="oauthbearer", ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach"], home=home)
    log = result.stdout + result.stderr
    assert result.returncode == 14, log  # PS_SERVBUSY, not 3 (AUTHFAIL)
    assert "temporary server failure" in result.stderr, log
    assert ("[UNAVAILABLE]" if protocol == "imap" else "[SYS/TEMP]") in result.stderr, log
    assert "Authorization failure" not in log, log
    assert _bearer_attempts(server) == ["OAUTHBEARER"]  # no second mechanism


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("fault", "status", "code"), [
    ("validation-down", 14, {"imap": "NO [UNAVAILABLE]", "pop3": "-ERR [SYS/TEMP]"}),
    ("in-use", 9, {"imap": "NO [INUSE]", "pop3": "-ERR [IN-USE]"}),
])
def test_server_says_try_later(patched_fetchmail: FetchmailBox, ca: TestCA, home: Path,
                               protocol: str, fault: str, status: int,
                               code: dict[str, str]) -> None:
    """The mock's own temporary faults: validation down (14, SERVBUSY) and mailbox in use
    (9, LOCKBUSY, which fetchmail retries a few times within the poll, as for a password)."""
    token = secrets.token_urlsafe(40)
    token_file(home / "token", token)
    with MailServerController(protocol, tls="implicit", ca=ca, validator=_validator(token),
                              mailbox=Mailbox(MESSAGES), faults=fault) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth="any", ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach", "-v"], home=home)
    log = result.stdout + result.stderr
    assert result.returncode == status, log
    assert code[protocol] in log and "temporary server failure" in result.stderr, log
    assert "Authorization failure" not in log, log
    sessions = len(server.transcripts)
    assert _bearer_attempts(server) == ["OAUTHBEARER"] * sessions, log  # never XOAUTH2 next
    assert _password_attempts(server) == [], log


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("failure", ["temporary", "rejected"])
def test_daemon_mails_a_notice_only_for_a_rejected_token(
        patched_fetchmail: FetchmailBox, ca: TestCA, home: Path, protocol: str, failure: str,
        provider: MockOAuthProvider) -> None:
    """Three failed polls make the daemon mail "your password is invalid" (the rejected run
    shows the mail would arrive); a temporary failure is retried at each poll instead, and
    the mail is fetched once the server is back."""
    token = provider.mint_token(USER, scope="mail")["access_token"]
    token_file(home / "token", token if failure == "temporary" else "not-" + token)
    if failure == "temporary":
        provider.inject("introspect", "status", status=503, count=4)
    with MailServerController(protocol, tls="implicit", ca=ca, validator=_introspecting(provider),
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth="oauthbearer", ca=ca)
        daemon = patched_fetchmail.popen(["-f", str(rc), "-d", "1", "-N"], home=home)
        assert daemon.stdout is not None
        lines: list[str] = []
        stdout = daemon.stdout
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")),
                                  daemon=True)
        reader.start()
        try:
            if failure == "temporary":
                assert wait_for(lambda: delivered(home).count("Subject: test") == 2, 120), (
                    "".join(lines))
                attempts = len(_bearer_attempts(server))
            else:
                assert wait_for(lambda: NOTICE in delivered(home), 120), "".join(lines)
        finally:
            patched_fetchmail.quit(home)
            daemon.wait(timeout=60)
            reader.join(timeout=30)
    output = "".join(lines)
    if failure == "temporary":
        assert NOTICE not in delivered(home), delivered(home)
        assert output.count("temporary server failure") == 4, output
        assert attempts >= 5, output  # four polls met the failure, the fifth fetched
    else:
        assert "Authorization failure" in output, output
