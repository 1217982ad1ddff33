"""End to end: fetchmail 6.4.33 + oauth64 logs in with bearer tokens and survives hostile servers.

Every test runs twice: against a native build, and against the harness's ASan+UBSan container
build (any sanitizer report fails the test).  Slow: one build of each per session.  The version
x distro matrix is the harness's job; this checks the patches themselves against the mock server.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.mockserver.controller import MailServerController
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import InMemoryValidator
from harness.series.table import load_series
from tests.helpers.skips import skip_loudly

pytestmark = [pytest.mark.slow, pytest.mark.fetchmail_source]

USER = "user@example.org"
BUILD_TOOLS = ("autoreconf", "autopoint", "flex", "bison", "make", "gcc", "pkg-config", "patch")
MESSAGES = [
    f"From: a@example.org\r\nSubject: test {i}\r\n\r\nbody {i}\r\n".encode() for i in (1, 2)
]


@pytest.fixture(scope="session", params=["native", "asan"])
def patched_fetchmail(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, session_cache: Path
) -> Path:
    """native: $FETCHMAIL_PATCHED_BINARY, else 6.4.33 + oauth64 built here;
    asan: the harness's sanitizer build of 6.4.33 + oauth64 (bookworm container)."""
    if request.param == "asan":
        return _build_sanitized(session_cache)
    prebuilt = os.environ.get("FETCHMAIL_PATCHED_BINARY")
    if prebuilt:
        return Path(prebuilt)
    return _build_patched(tmp_path_factory)


def _build_sanitized(cache: Path) -> Path:
    from harness.build.builder import BuildSpec, build
    from harness.source.mirror import FetchmailSource
    from tests.helpers.skips import FETCHMAIL_UPSTREAM, docker_available

    if FETCHMAIL_UPSTREAM is None:
        skip_loudly("no fetchmail source for the sanitizer build (see tests/conftest.py)")
    if not docker_available():
        skip_loudly("no Docker engine for the sanitizer build (run `fetchmail-harness setup`)")
    source = FetchmailSource(str(FETCHMAIL_UPSTREAM), cache=cache)
    result = build(BuildSpec("6.4.33", "bookworm", "oauth64", sanitize=True), source=source,
                   cache=cache)
    probe = subprocess.run([str(result.binary), "--version"], capture_output=True, text=True,
                           env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    if "This is fetchmail release 6.4.33" not in probe.stdout:
        skip_loudly(f"the bookworm sanitizer build does not run on this host: {probe.stderr}")
    return result.binary


def _build_patched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.skips import FETCHMAIL_UPSTREAM

    if FETCHMAIL_UPSTREAM is None:
        skip_loudly("no fetchmail source: set FETCHMAIL_UPSTREAM (see tests/conftest.py)")
    fetchmail_upstream = str(FETCHMAIL_UPSTREAM)
    missing = [t for t in BUILD_TOOLS if shutil.which(t) is None]
    if missing or not Path("/usr/include/openssl/ssl.h").exists():
        skip_loudly(f"cannot build fetchmail here: missing {missing or ['libssl-dev']}")
    root = tmp_path_factory.mktemp("fetchmail-6.4.33")
    clone = root / "fetchmail.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", fetchmail_upstream, str(clone)],
                   check=True, capture_output=True)
    archive = subprocess.run(
        ["git", "--git-dir", str(clone), "archive", "RELEASE_6-4-33"],
        check=True, capture_output=True,
    ).stdout
    tar_path = root / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(root / "src", filter="data")
    src = root / "src"
    for patch in load_series("oauth64").patches:
        subprocess.run(["patch", "-p1", "-F0", "--batch", "-s", "-d", str(src), "-i",
                        str(patch.path)], check=True)
    log = root / "build.log"
    with log.open("wb") as out:
        for cmd in (["./autogen.sh"], ["./configure", "--with-ssl"], ["make", "-j2"]):
            if subprocess.run(cmd, cwd=src, stdout=out, stderr=subprocess.STDOUT).returncode:
                pytest.fail(f"{' '.join(cmd)} failed:\n{log.read_text(errors='replace')[-3000:]}")
    return src / "fetchmail"


@pytest.fixture(scope="module")
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


def _run(fetchmail: Path, tmp: Path, rc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(tmp), FETCHMAILHOME=str(tmp), ASAN_OPTIONS="detect_leaks=0")
    return subprocess.run([str(fetchmail), "-f", str(rc), "--nodetach", *args],
                          capture_output=True, text=True, env=env, timeout=120)


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
def test_bearer_login(patched_fetchmail: Path, ca: TestCA, tmp_path: Path,
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
        result = _run(patched_fetchmail, tmp_path, rc, "-vv")
    log = result.stdout + result.stderr
    assert not _leaks(log, sent), log
    if kind == "bad":
        assert result.returncode == 3, log  # PS_AUTHFAIL
        assert ("401" if mech == "xoauth2" else "invalid_token") in result.stderr, log
        assert "authentication failed" in result.stderr, log
    else:
        assert result.returncode == 0, log
        assert out.read_text().count("Subject: test") == 2


def test_passwordfile_rotation_in_daemon_mode(patched_fetchmail: Path, ca: TestCA,
                                              tmp_path: Path) -> None:
    validator = InMemoryValidator()
    first, second = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
    validator.add(first, USER)
    pwfile = _token_file(tmp_path / "token", first)
    with MailServerController("imap", tls="implicit", validator=validator, ca=ca,
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = _rcfile(tmp_path, ca, "imap", "implicit", server.port, "xoauth2", pwfile,
                     tmp_path / "mbox")
        env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
        daemon = subprocess.Popen([str(patched_fetchmail), "-f", str(rc), "-d", "1", "-N", "-v"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=env)
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
def test_hostile_server_fails_cleanly(patched_fetchmail: Path, ca: TestCA, tmp_path: Path,
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
        result = _run(patched_fetchmail, tmp_path, rc, "-vv")
    log = result.stdout + result.stderr
    assert 0 <= result.returncode < 128, log  # an exit status, not a signal
    if sasl_fault:
        assert result.returncode != 0, log
    assert not _leaks(log, sent), log


def test_serve_example_rc_works_as_printed(patched_fetchmail: Path, tmp_path: Path) -> None:
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
        done = _run(patched_fetchmail, tmp_path, rc, "-v")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3 messages" in done.stdout + done.stderr
    finally:
        serve.terminate()
        serve.wait(10)
