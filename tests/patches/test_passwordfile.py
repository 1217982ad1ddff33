"""The passwordfile of 6.4.33 + oauth64: what it accepts, refuses and how it resolves paths;
the prompt and .netrc refusing what they would truncate; --configdump and fetchmailconf."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.archives import extract
from harness.mockserver.controller import MailServerController
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import InMemoryValidator
from harness.series.table import load_series
from tests.helpers.skips import FETCHMAIL_UPSTREAM, skip_loudly
from tests.patches.accounts import MESSAGES, USER, leaks, rcfile, token_file, wait_for
from tests.patches.conftest import VERSION
from tests.patches.fetchmail_box import FetchmailBox

pytestmark = [pytest.mark.slow, pytest.mark.fetchmail_source, pytest.mark.docker]


def _server(token: str, **kwargs: object) -> MailServerController:
    validator = InMemoryValidator()
    validator.add(token, USER)
    return MailServerController("imap", validator=validator, mailbox=Mailbox(MESSAGES),
                                **kwargs)  # type: ignore[arg-type]


def _logins(server: MailServerController) -> int:
    return sum(t.text().count("Logged in") for t in server.transcripts)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_non_regular_file_is_refused_without_blocking(
        patched_fetchmail: FetchmailBox, ca: TestCA, home: Path, kind: str) -> None:
    """A FIFO nobody writes to used to hang fetchmail forever in open(2)."""
    path = home / "token"
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "directory":
        path.mkdir(mode=0o700)
    with _server("unused", tls="implicit", ca=ca) as server:
        target = "/dev/null" if kind == "device" else "token"
        rc = rcfile(home, port=server.port, protocol="imap", auth="xoauth2", ca=ca,
                    user_options=f'passwordfile "{target}"')
        try:
            result = patched_fetchmail.run(["-f", str(rc), "--nodetach"], home=home, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"fetchmail still blocked on the {kind} after 60 s")
        finally:
            if kind == "fifo":  # release a reader that did block, so nothing lingers
                with contextlib.suppress(OSError):
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        assert not server.transcripts, "fetchmail connected although it had no secret"
    assert result.returncode == 6, result.stderr  # PS_IOERR: this poll failed
    assert {"fifo": "is a FIFO", "device": "is a device",
            "directory": "is a directory"}[kind] in result.stderr, result.stderr


@pytest.mark.parametrize("where", ["rcfile", "command-line"])
def test_relative_passwordfile_survives_daemonising(
        patched_fetchmail: FetchmailBox, ca: TestCA, home: Path, tmp_path: Path,
        where: str) -> None:
    """A detached daemon changes to /; the relative path was made absolute before that:
    against the rc file's directory (rcfile), or the current directory (--passwordfile)."""
    token = secrets.token_urlsafe(40)
    token_file(home / "token", token)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with _server(token, tls="implicit", ca=ca) as server:
        if where == "rcfile":
            rc = rcfile(home, port=server.port, protocol="imap", auth="xoauth2", ca=ca)
            args, cwd = ["-f", str(rc)], elsewhere
        else:
            rc = rcfile(home, port=server.port, protocol="imap", auth="xoauth2", ca=ca,
                        user_options="")
            args, cwd = ["-f", str(rc), "--passwordfile", "token"], home
        (home / "log").touch()  # fetchmail logs to an existing file only
        started = patched_fetchmail.run([*args, "-d", "1", "-L", str(home / "log")],
                                        home=home, cwd=cwd)
        try:
            assert started.returncode == 0, started.stdout + started.stderr
            assert wait_for(lambda: _logins(server) >= 2), (home / "log").read_text()
        finally:
            patched_fetchmail.quit(home)
    dump = patched_fetchmail.run([*args, "-V"], home=home, cwd=cwd)
    assert f'from file "{home / "token"}"' in dump.stdout, dump.stdout


def test_trailing_white_space_is_trimmed(patched_fetchmail: FetchmailBox, ca: TestCA,
                                         home: Path) -> None:
    token = secrets.token_urlsafe(40)
    token_file(home / "token", token, ending=" \t \r\n\n")
    with _server(token, tls="implicit", ca=ca) as server:
        rc = rcfile(home, port=server.port, protocol="imap", auth="oauthbearer", ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach"], home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _logins(server) == 1


def test_password_and_passwordfile_together_is_a_configuration_error(
        patched_fetchmail: FetchmailBox, home: Path) -> None:
    token_file(home / "token", "a-token")
    rc = rcfile(home, port=1, protocol="imap", auth="xoauth2", tls="plain",
                user_options='password "secret" passwordfile "token"')
    result = patched_fetchmail.run(["-f", str(rc), "--nodetach"], home=home)
    assert result.returncode == 5, result.stdout + result.stderr  # PS_SYNTAX, at start-up
    assert "both a password and a passwordfile" in result.stderr
    assert "secret" not in result.stdout + result.stderr


@pytest.mark.parametrize("length", [100, 3000])
def test_prompt_refuses_what_it_would_truncate(patched_fetchmail: FetchmailBox, home: Path,
                                               length: int) -> None:
    """At the tty prompt a 3,000 character token used to become its first 255 characters."""
    rc = rcfile(home, port=1, protocol="imap", auth="password", tls="plain", user_options="")
    master, slave = os.openpty()  # docker exec -t wants a terminal on its side too
    try:
        prompt = patched_fetchmail.popen(["-f", str(rc), "--nodetach"], home=home, tty=True,
                                         stdin=slave)
        assert prompt.stdout is not None
        seen = ""
        while "Enter password for" not in seen:
            chunk = prompt.stdout.read(1)
            assert chunk, f"no prompt: {seen}"
            seen += chunk
        os.write(master, b"p" * length + b"\n")
        try:
            rest, _ = prompt.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            prompt.kill()
            raise
    finally:
        os.close(slave)
        os.close(master)
    log = seen + rest
    if length > 255:
        assert prompt.returncode == 3, log
        assert "longer than 255 characters" in log, log
    else:  # accepted: fetchmail went on to connect (to a closed port)
        assert "longer than" not in log, log
        assert prompt.returncode == 2, log  # PS_SOCKET


@pytest.mark.parametrize("length", [100, 3000])
def test_netrc_refuses_what_it_would_truncate(patched_fetchmail: FetchmailBox, ca: TestCA,
                                              home: Path, length: int) -> None:
    password = secrets.token_hex(length // 2)
    netrc = home / ".netrc"
    netrc.write_text(f"machine localhost login {USER} password {password}\n")
    netrc.chmod(0o600)
    validator = InMemoryValidator()
    with MailServerController("imap", tls="implicit", ca=ca, validator=validator,
                              mailbox=Mailbox(MESSAGES), passwords={USER: password}) as server:
        rc = rcfile(home, port=server.port, protocol="imap", auth="password", ca=ca,
                    user_options="")
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach"], home=home)
    log = result.stdout + result.stderr
    assert password not in log
    if length > 511:
        assert "line longer than 511 characters ignored" in log, log
        assert result.returncode == 3, log  # no password found: never sent a cut one
        assert not server.transcripts
    else:
        assert result.returncode == 0, log  # .netrc itself works


# -- --configdump and fetchmailconf ----------------------------------------------------------


def _patched_tree(dest: Path) -> Path:
    """6.4.33's source with the oauth64 series applied (no build: fetchmailconf.py is Python)."""
    if FETCHMAIL_UPSTREAM is None:
        skip_loudly("no fetchmail source: set FETCHMAIL_UPSTREAM (see tests/conftest.py)")
    archive = subprocess.run(
        ["git", "--git-dir", str(FETCHMAIL_UPSTREAM), "archive", "RELEASE_6-4-33"],
        check=True, capture_output=True,
    ).stdout
    (dest / "src.tar").write_bytes(archive)
    with tarfile.open(dest / "src.tar") as tar:
        extract(tar, dest / "src")
    for patch in load_series("oauth64").patches:
        subprocess.run(["patch", "-p1", "-F0", "--batch", "-s", "-d", str(dest / "src"), "-i",
                        str(patch.path)], check=True)
    return dest / "src"


def _fetchmailconf(script: Path, rc: Path, home: Path, wrapper_dir: Path) -> str:
    """`fetchmailconf -d -f RC` (dump what it read); Debian's python3, fetchmail from PATH.
    Its hostname check wants a dotted name, which a test machine may lack: faked."""
    python = "/usr/bin/python3"
    probe = subprocess.run([python, "-c", "import past, future"], capture_output=True)
    if probe.returncode:
        skip_loudly("fetchmailconf needs python3-future (run `fetchmail-harness setup "
                    "--test-peers`)")
    code = (
        "import runpy, socket, sys\n"
        "socket.gethostname = lambda: 'fetchmailconf-test.example'\n"
        f"sys.argv = ['fetchmailconf', '-d', '-f', {str(rc)!r}]\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    env = dict(os.environ, PATH=f"{wrapper_dir}:{os.environ['PATH']}", HOME=str(home),
               FETCHMAILHOME=str(home), USER="tester", DISPLAY=":0")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    return done.stdout + done.stderr


def test_configdump_and_fetchmailconf_know_the_new_fields(
        patched_fetchmail: FetchmailBox, home: Path, tmp_path: Path) -> None:
    token_file(home / "token", "a-token")
    rc = rcfile(home, port=993, protocol="imap", auth="xoauth2", tls="plain",
                server_options="bearerwithouttls")
    dump = patched_fetchmail.run(["-f", str(rc), "--configdump"], home=home)
    assert dump.returncode == 0, dump.stderr
    assert f'"passwordfile":"{home / "token"}"' in dump.stdout, dump.stdout
    assert "'bearerwithouttls':TRUE" in dump.stdout, dump.stdout
    assert '"auth":"xoauth2"' in dump.stdout, dump.stdout
    assert "a-token" not in dump.stdout

    tree = _patched_tree(tmp_path)
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    shutil.copy(tree / "fetchmailconf.py", tmp_path / "fetchmailconf-patched.py")
    (wrappers / "fetchmail").write_text(patched_fetchmail.wrapper_script(home))
    (wrappers / "fetchmail").chmod(0o755)
    read = _fetchmailconf(tmp_path / "fetchmailconf-patched.py", rc, home, wrappers)
    assert "Fields don't match" not in read, read
    assert "This is a dump of the configuration we read:" in read, read
    assert f"passwordfile '{home / 'token'}'" in read, read
    assert "auth xoauth2" in read and "bearerwithouttls" in read, read

    # what fetchmailconf would save is an rc file fetchmail reads back the same
    saved = read.split("This is a dump of the configuration we read:\n", 1)[1]
    saved = saved.split("\n\n\n", 1)[0] + "\n"
    again = home / "saved-rc"
    again.write_text(saved)
    again.chmod(0o600)
    redump = patched_fetchmail.run(["-f", str(again), "--configdump"], home=home)
    assert redump.returncode == 0, saved + redump.stderr
    for field in (f'"passwordfile":"{home / "token"}"', "'bearerwithouttls':TRUE",
                  '"auth":"xoauth2"'):
        assert field in redump.stdout, saved + redump.stdout

    # the control: 6.4.33's own fetchmailconf cannot read this configuration
    upstream = subprocess.run(
        ["git", "--git-dir", str(FETCHMAIL_UPSTREAM), "show", "RELEASE_6-4-33:fetchmailconf.py"],
        check=True, capture_output=True).stdout
    (tmp_path / "fetchmailconf-6.4.33.py").write_bytes(upstream)
    old = _fetchmailconf(tmp_path / "fetchmailconf-6.4.33.py", rc, home, wrappers)
    assert "Fields don't match" in old, old


def test_version_report_shows_the_passwordfile_not_the_secret(
        patched_fetchmail: FetchmailBox, home: Path) -> None:
    token = secrets.token_urlsafe(40)
    token_file(home / "token", token)
    rc = rcfile(home, port=993, protocol="imap", auth="any", tls="plain")
    shown = patched_fetchmail.run(["-f", str(rc), "-V"], home=home)
    assert f'Password will be read from file "{home / "token"}"' in shown.stdout, shown.stdout
    assert "OAUTHBEARER, then XOAUTH2" in shown.stdout, shown.stdout
    assert not leaks(shown.stdout + shown.stderr, token)
    assert VERSION in shown.stdout
