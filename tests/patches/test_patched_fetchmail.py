"""End to end: fetchmail 6.4.33 + oauth64 logs in with bearer tokens and survives hostile servers.

Every test runs twice: with the harness's plain container build and with its ASan+UBSan build
(any sanitizer report fails the test). Each binary runs in a container of the image it was built
in, with the host's network (as matrix cells run): it never depends on the host's libraries or
build tools. Slow: one build of each per session. The version x distro matrix is the harness's
job; this checks the patches themselves against the mock server.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.mockserver.controller import MailServerController
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import InMemoryValidator
from tests.helpers.skips import FETCHMAIL_UPSTREAM, docker_available, skip_loudly

pytestmark = [pytest.mark.slow, pytest.mark.fetchmail_source, pytest.mark.docker]

USER = "user@example.org"
MESSAGES = [
    f"From: a@example.org\r\nSubject: test {i}\r\n\r\nbody {i}\r\n".encode() for i in (1, 2)
]


@dataclass(frozen=True)
class Fetchmail:
    """A built fetchmail and how to start it.

    `image` set: inside a throwaway container of that image, host network, the caller's uid, with
    the binary and the given directories mounted at their own paths. `image` None: on the host
    (a prebuilt $FETCHMAIL_PATCHED_BINARY). Either way with a private FETCHMAILHOME and
    --pidfile, so a fetchmail daemon of the machine's own is never seen nor signalled.
    """

    binary: Path
    image: str | None = None
    mounts: tuple[Path, ...] = ()

    def argv(self, home: Path, args: tuple[str, ...], name: str) -> list[str]:
        fetchmail = [str(self.binary), "--pidfile", str(home / "fetchmail.pid"), *args]
        if self.image is None:
            return fetchmail
        volumes = [self.binary.parent, home, *self.mounts]
        docker = ["docker", "run", "--rm", "-i", "--init", "--name", name, "--network", "host",
                  "--user", f"{os.getuid()}:{os.getgid()}", "-w", str(home),
                  "-v", "/etc/passwd:/etc/passwd:ro", "-v", "/etc/group:/etc/group:ro"]
        for path in dict.fromkeys(volumes):
            docker += ["-v", f"{path}:{path}"]
        for key, value in _env(home).items():
            docker += ["-e", f"{key}={value}"]
        return [*docker, self.image, *fetchmail]

    def run(self, home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        name = f"fmh-test-{uuid.uuid4().hex[:12]}"
        try:
            return subprocess.run(self.argv(home, args, name), capture_output=True, text=True,
                                  env=dict(os.environ, **_env(home)), timeout=timeout)
        finally:
            self.remove(name)

    def popen(self, home: Path, *args: str, **kwargs: Any) -> tuple[subprocess.Popen[str], str]:
        name = f"fmh-test-{uuid.uuid4().hex[:12]}"
        return subprocess.Popen(self.argv(home, args, name), text=True,
                                env=dict(os.environ, **_env(home)), **kwargs), name

    def remove(self, name: str) -> None:
        """Make sure the container is gone (a timed-out or killed client leaves it running)."""
        if self.image is not None:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def _env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "FETCHMAILHOME": str(home), "ASAN_OPTIONS": "detect_leaks=0"}


@pytest.fixture(scope="session", params=["plain", "asan"])
def patched_fetchmail(request: pytest.FixtureRequest, session_cache: Path,
                      ca: TestCA) -> Fetchmail:
    """6.4.33 + oauth64 built by the harness on bookworm (plain, or ASan+UBSan), run in its
    build image; "plain" may be replaced by a prebuilt host binary: $FETCHMAIL_PATCHED_BINARY."""
    prebuilt = os.environ.get("FETCHMAIL_PATCHED_BINARY")
    if request.param == "plain" and prebuilt:
        return Fetchmail(Path(prebuilt))
    return _container_build(session_cache, sanitize=request.param == "asan", ca=ca)


def _container_build(cache: Path, *, sanitize: bool, ca: TestCA) -> Fetchmail:
    from harness.build.builder import BuildSpec, build
    from harness.build.engine import ensure_engine
    from harness.build.images import ensure_build_image
    from harness.source.mirror import FetchmailSource
    from harness.source.versions import Version

    if FETCHMAIL_UPSTREAM is None:
        skip_loudly("no fetchmail source for the build (see tests/helpers/skips.py)")
    if not docker_available():
        skip_loudly("no Docker engine for the build (run `fetchmail-harness setup`)")
    source = FetchmailSource(str(FETCHMAIL_UPSTREAM), cache=cache)
    spec = BuildSpec(Version.parse("6.4.33"), "bookworm", "oauth64", sanitize=sanitize)
    result = build(spec, source=source, cache=cache)
    image, _ = ensure_build_image(ensure_engine(), spec.distro)
    fetchmail = Fetchmail(result.binary, image.tag, (ca.directory,))
    probe = fetchmail.run(cache, "--version")
    assert "This is fetchmail release 6.4.33" in probe.stdout, probe.stdout + probe.stderr
    return fetchmail


@pytest.fixture(scope="session")
def ca() -> Iterator[TestCA]:
    the_ca = TestCA()
    yield the_ca
    the_ca.cleanup()


def _token_file(path: Path, token: str) -> Path:
    tmp = path.with_suffix(".new")
    tmp.write_text(token + "\n")
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return path


def _rcfile(tmp: Path, ca: TestCA, protocol: str, tls: str, port: int, mech: str,
            pwfile: Path, out: Path) -> Path:
    tls_opts = "ssl sslcertck" if tls == "implicit" else "sslproto 'tls1.2+' sslcertck"
    rc = tmp / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll localhost service {port} protocol {protocol} auth {mech} timeout 30:\n"
        f'  user "{USER}" passwordfile "{pwfile}"\n'
        f'  {tls_opts} sslcertfile "{ca.ca_path}"\n'
        f'  keep fetchall mda "cat >> {out}"\n'
    )
    rc.chmod(0o600)
    return rc


def _leaks(text: str, token: str) -> list[str]:
    """Traces of the token (raw or inside a base64 blob), or of a sanitizer report."""
    found = ["raw token"] if token in text else []
    found += [s for s in ("AddressSanitizer", "runtime error:") if s in text]
    for word in text.split():
        if len(word) > 40:
            try:
                if token[:24].encode() in base64.b64decode(word + "==="):
                    found.append("base64 blob")
            except ValueError:
                pass
    return found


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
@pytest.mark.parametrize("mech", ["xoauth2", "oauthbearer"])
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("kind", ["good", "long", "bad"])
def test_bearer_login(patched_fetchmail: Fetchmail, ca: TestCA, tmp_path: Path,
                      protocol: str, mech: str, tls: str, kind: str) -> None:
    validator = InMemoryValidator()
    token = secrets.token_urlsafe(12_000 if kind == "long" else 48)  # long: 16 000 chars
    validator.add(token, USER)
    sent = token if kind != "bad" else "not-" + token
    pwfile = _token_file(tmp_path / "token", sent)
    out = tmp_path / "mbox"
    # Dovecot drops SASL responses of 8 KB and more (the mock's dovecot profile too); Gmail
    # and Microsoft take long tokens.
    profile = "gmail" if kind == "long" else "dovecot"
    with MailServerController(protocol, tls=tls, validator=validator, ca=ca, profile=profile,
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = _rcfile(tmp_path, ca, protocol, tls, server.port, mech, pwfile, out)
        result = patched_fetchmail.run(tmp_path, "-f", str(rc), "--nodetach", "-vv")
    log = result.stdout + result.stderr
    assert not _leaks(log, sent), log
    if kind == "bad":
        assert result.returncode == 3, log  # PS_AUTHFAIL
        assert ("401" if mech == "xoauth2" else "invalid_token") in result.stderr, log
        assert "authentication failed" in result.stderr, log
    else:
        assert result.returncode == 0, log
        assert out.read_text().count("Subject: test") == 2


def test_passwordfile_rotation_in_daemon_mode(patched_fetchmail: Fetchmail, ca: TestCA,
                                              tmp_path: Path) -> None:
    validator = InMemoryValidator()
    first, second = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
    validator.add(first, USER)
    pwfile = _token_file(tmp_path / "token", first)
    with MailServerController("imap", tls="implicit", validator=validator, ca=ca,
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = _rcfile(tmp_path, ca, "imap", "implicit", server.port, "xoauth2", pwfile,
                     tmp_path / "mbox")
        daemon, name = patched_fetchmail.popen(tmp_path, "-f", str(rc), "-d", "1", "-N", "-v",
                                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        stdout = daemon.stdout
        assert stdout is not None
        lines: list[str] = []  # read as it comes, so the test can wait for a message
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")),
                                  daemon=True)
        reader.start()
        try:
            def logins() -> int:
                return sum(t.text().count("Logged in") for t in server.transcripts)

            def wait_for(done: Callable[[], bool]) -> bool:
                for _ in range(300):  # polls every second; this is a deadline, not a timing
                    if done():
                        return True
                    time.sleep(0.1)
                return False

            assert wait_for(lambda: logins() >= 1), "first poll did not log in"
            validator.remove(first)  # the server now only accepts the new token
            validator.add(second, USER)
            _token_file(pwfile, second)
            seen = logins()
            assert wait_for(lambda: logins() >= seen + 2), "no login with the rotated token"
            pwfile.chmod(0o644)  # too open: that poll fails, the daemon goes on
            assert wait_for(lambda: any("too open" in line for line in lines)), "".join(lines)
            assert daemon.poll() is None, "daemon exited on a bad passwordfile"
            pwfile.chmod(0o600)
            seen = logins()
            assert wait_for(lambda: logins() >= seen + 1), "no login after the file was fixed"
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
            patched_fetchmail.remove(name)
            reader.join(timeout=30)
    output = "".join(lines)
    assert "too open" in output, output
    assert not _leaks(output, first) and not _leaks(output, second), output


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize(
    "faults",
    ["bad-base64", "endless-continuations", "early-disconnect", "disconnect-after=2",
     "overlong=300000", "malformed", "disconnect-mid-fetch"],
)
def test_hostile_server_fails_cleanly(patched_fetchmail: Fetchmail, ca: TestCA, tmp_path: Path,
                                      protocol: str, faults: str) -> None:
    """Broken replies end the poll with a status, never a crash or hang; no token in logs."""
    validator = InMemoryValidator()
    token = secrets.token_urlsafe(48)
    validator.add(token, USER)
    # SASL faults: a wrong token makes the server send its (here broken) error challenge;
    # the others hit a logged-in session, where a good token gets that far
    sasl_fault = faults not in ("malformed", "overlong=300000", "disconnect-mid-fetch")
    sent = "x" + token if sasl_fault else token
    pwfile = _token_file(tmp_path / "token", sent)
    with MailServerController(protocol, tls="implicit", validator=validator, ca=ca,
                              mailbox=Mailbox(MESSAGES), faults=faults) as server:
        rc = _rcfile(tmp_path, ca, protocol, "implicit", server.port, "oauthbearer", pwfile,
                     tmp_path / "mbox")
        result = patched_fetchmail.run(tmp_path, "-f", str(rc), "--nodetach", "-vv")
    log = result.stdout + result.stderr
    assert 0 <= result.returncode < 128, log  # an exit status, not a signal
    if sasl_fault:
        assert result.returncode != 0, log
    assert not _leaks(log, sent), log


def test_serve_example_rc_works_as_printed(patched_fetchmail: Fetchmail, tmp_path: Path) -> None:
    """What a new user does: start `fetchmail-harness serve`, paste its example rc, fetch."""
    import sys

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
        rc = tmp_path / "fetchmailrc"
        rc.write_text(rc_text + "\n")
        rc.chmod(0o600)
        done = patched_fetchmail.run(tmp_path, "-f", str(rc), "--nodetach", "-v")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3 messages" in done.stdout + done.stderr
    finally:
        serve.terminate()
        serve.wait(10)
