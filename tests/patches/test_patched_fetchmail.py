"""End to end: fetchmail 6.4.33 + oauth64 logs in with bearer tokens and survives hostile servers.

Every test runs twice: with the harness's plain container build and with its ASan+UBSan build
(any sanitizer report fails the test), each run in a container of the image it was built in (see
fetchmail_box).  Slow: one build of each per session.  The version x distro matrix is the
harness's job; this checks the patches themselves against the mock server.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.mockserver.controller import MailServerController
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import InMemoryValidator
from tests.patches.accounts import MESSAGES, USER, leaks, rcfile, token_file, wait_for
from tests.patches.fetchmail_box import FetchmailBox

pytestmark = [pytest.mark.slow, pytest.mark.fetchmail_source, pytest.mark.docker]


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
@pytest.mark.parametrize("mech", ["xoauth2", "oauthbearer"])
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("kind", ["good", "long", "bad"])
def test_bearer_login(patched_fetchmail: FetchmailBox, ca: TestCA, home: Path,
                      protocol: str, mech: str, tls: str, kind: str) -> None:
    validator = InMemoryValidator()
    token = secrets.token_urlsafe(12_000 if kind == "long" else 48)  # long: 16 000 chars
    validator.add(token, USER)
    sent = token if kind != "bad" else "not-" + token
    token_file(home / "token", sent)
    # Dovecot drops SASL responses of 8 KB and more (the mock's dovecot profile too); Gmail
    # and Microsoft take long tokens.
    profile = "gmail" if kind == "long" else "dovecot"
    with MailServerController(protocol, tls=tls, validator=validator, ca=ca, profile=profile,
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth=mech, tls=tls, ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach", "-vv"], home=home)
    log = result.stdout + result.stderr
    assert not leaks(log, sent), log
    assert "<token hidden>" in log, log  # the trace shows where the token went
    if kind == "bad":
        assert result.returncode == 3, log  # PS_AUTHFAIL
        assert ("401" if mech == "xoauth2" else "invalid_token") in result.stderr, log
        assert "authentication failed" in result.stderr, log
    else:
        assert result.returncode == 0, log
        assert (home / "mbox").read_text().count("Subject: test") == 2


def test_passwordfile_rotation_in_daemon_mode(patched_fetchmail: FetchmailBox, ca: TestCA,
                                              home: Path) -> None:
    validator = InMemoryValidator()
    first, second = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
    validator.add(first, USER)
    pwfile = token_file(home / "token", first)
    with MailServerController("imap", tls="implicit", validator=validator, ca=ca,
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = rcfile(home, port=server.port, protocol="imap", auth="xoauth2", ca=ca)
        daemon = patched_fetchmail.popen(["-f", str(rc), "-d", "1", "-N", "-v"], home=home)
        stdout = daemon.stdout
        assert stdout is not None
        lines: list[str] = []  # read as it comes, so the test can wait for a message
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")),
                                  daemon=True)
        reader.start()
        try:
            def logins() -> int:
                return sum(t.text().count("Logged in") for t in server.transcripts)

            assert wait_for(lambda: logins() >= 1), "first poll did not log in"
            validator.remove(first)  # the server now only accepts the new token
            validator.add(second, USER)
            token_file(pwfile, second)
            seen = logins()
            assert wait_for(lambda: logins() >= seen + 2), "no login with the rotated token"
            pwfile.chmod(0o644)  # too open: that poll fails, the daemon goes on
            assert wait_for(lambda: any("too open" in line for line in lines)), "".join(lines)
            assert daemon.poll() is None, "daemon exited on a bad passwordfile"
            pwfile.chmod(0o600)
            seen = logins()
            assert wait_for(lambda: logins() >= seen + 1), "no login after the file was fixed"
        finally:
            patched_fetchmail.quit(home)
            daemon.wait(timeout=60)
            reader.join(timeout=30)
    output = "".join(lines)
    assert "too open" in output, output
    assert not leaks(output, first) and not leaks(output, second), output


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize(
    "faults",
    ["bad-base64", "endless-continuations", "early-disconnect", "disconnect-after=2",
     "overlong=300000", "malformed", "disconnect-mid-fetch"],
)
def test_hostile_server_fails_cleanly(patched_fetchmail: FetchmailBox, ca: TestCA, home: Path,
                                      protocol: str, faults: str) -> None:
    """Broken replies end the poll with a status, never a crash or hang; no token in logs."""
    validator = InMemoryValidator()
    token = secrets.token_urlsafe(48)
    validator.add(token, USER)
    # SASL faults: a wrong token makes the server send its (here broken) error challenge;
    # the others hit a logged-in session, where a good token gets that far
    sasl_fault = faults not in ("malformed", "overlong=300000", "disconnect-mid-fetch")
    sent = "x" + token if sasl_fault else token
    token_file(home / "token", sent)
    with MailServerController(protocol, tls="implicit", validator=validator, ca=ca,
                              mailbox=Mailbox(MESSAGES), faults=faults) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth="oauthbearer", ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach", "-vv"], home=home)
    log = result.stdout + result.stderr
    assert 0 <= result.returncode < 128, log  # an exit status, not a signal
    if sasl_fault:
        assert result.returncode != 0, log
    assert not leaks(log, sent), log


def test_serve_example_rc_works_as_printed(patched_fetchmail: FetchmailBox, tmp_path: Path,
                                           home: Path) -> None:
    """What a new user does: start `fetchmail-harness serve`, paste its example rc, fetch."""
    serve = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--protocol", "imap", "--tls", "starttls",
         "--generate", "3", "--workdir", str(tmp_path / "serve")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert serve.stdout is not None
        lines: list[str] = []
        for line in serve.stdout:
            lines.append(line)
            if line.startswith("serving"):
                break
        text = "".join(lines)
        assert "serving" in text, text
        rc_text = text.split("example .fetchmailrc:\n", 1)[1].split("\n\n", 1)[0]
        rc = home / "fetchmailrc"
        rc.write_text(rc_text + "\n")
        rc.chmod(0o600)
        done = patched_fetchmail.run(["-f", str(rc), "--nodetach", "-v"], home=home)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3 messages" in done.stdout + done.stderr
    finally:
        serve.terminate()
        serve.wait(10)
