"""No freed heap block of 6.4.33 + oauth64 still holds the token or its base64 form.

An allocator shim (freescan.c, LD_PRELOAD) scans every block before free() and every block
realloc() leaves behind.  The series used to leave the token in five or six of them (memset
before free is a dead store gcc removes, and realloc copies were never wiped).  A server reply
that fetchmail frees unwiped on purpose is scanned for as well, to show the shim sees them.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from pathlib import Path

import pytest

from harness.mockserver.controller import MailServerController
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import InMemoryValidator
from tests.helpers.skips import skip_loudly
from tests.patches.accounts import MESSAGES, USER, rcfile, token_file, wait_for
from tests.patches.fetchmail_box import FetchmailBox

pytestmark = [pytest.mark.slow, pytest.mark.fetchmail_source, pytest.mark.docker,
              # ASan brings its own allocator: the scan runs on the plain build only
              pytest.mark.parametrize("patched_fetchmail", ["plain"], indirect=True)]


@pytest.fixture
def shim(patched_fetchmail: FetchmailBox, tmp_path: Path) -> Path:
    assert patched_fetchmail.flavour == "plain"
    if patched_fetchmail.container is None and shutil.which("gcc") is None:
        skip_loudly("no gcc on this host to build the allocator shim for the prebuilt binary")
    source = tmp_path / "freescan.c"
    shutil.copy(Path(__file__).with_name("freescan.c"), source)
    library = tmp_path / "freescan.so"
    patched_fetchmail.shell(f"gcc -O2 -shared -fPIC -o {library} {source}")
    return library


def _patterns(token: str) -> list[str]:
    """The token, and the middle of its base64 form at each of the three alignments."""
    forms = [base64.b64encode(pad + token.encode()).decode()[4:-4] for pad in (b"", b"a", b"ab")]
    return [token, *forms]


def _scan_env(shim: Path, home: Path, patterns: list[str]) -> dict[str, str]:
    return {"LD_PRELOAD": str(shim), "FREESCAN_PATTERNS": "\n".join(patterns),
            "FREESCAN_LOG": str(home / "freescan.log")}


def _finds(home: Path) -> list[str]:
    log = home / "freescan.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("kind", ["good", "long", "bad"])
def test_no_token_in_freed_memory(patched_fetchmail: FetchmailBox, shim: Path, ca: TestCA,
                                  home: Path, protocol: str, kind: str) -> None:
    token = secrets.token_urlsafe(3000 if kind == "long" else 60)
    validator = InMemoryValidator()
    if kind != "bad":
        validator.add(token, USER)
    token_file(home / "token", token)
    reply = "Authentication failed" if kind == "bad" else "Logged in"  # freed unwiped
    patterns = [*_patterns(token), reply]
    with MailServerController(protocol, tls="implicit", ca=ca, validator=validator,
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = rcfile(home, port=server.port, protocol=protocol, auth="oauthbearer", ca=ca)
        result = patched_fetchmail.run(["-f", str(rc), "--nodetach"], home=home,
                                       env=_scan_env(shim, home, patterns))
    assert result.returncode == (3 if kind == "bad" else 0), result.stdout + result.stderr
    finds = _finds(home)
    control = f"pattern {len(patterns) - 1} "
    assert any(f.startswith(control) for f in finds), f"the shim saw no freed reply: {finds}"
    assert [f for f in finds if not f.startswith(control)] == [], finds


def test_no_rotated_token_in_freed_memory(patched_fetchmail: FetchmailBox, shim: Path,
                                          ca: TestCA, home: Path) -> None:
    """The daemon frees the previous token when it reads the next one: wiped first."""
    first, second = secrets.token_urlsafe(60), secrets.token_urlsafe(60)
    validator = InMemoryValidator()
    validator.add(first, USER)
    validator.add(second, USER)
    pwfile = token_file(home / "token", first)
    with MailServerController("imap", tls="implicit", ca=ca, validator=validator,
                              mailbox=Mailbox(MESSAGES)) as server:
        rc = rcfile(home, port=server.port, protocol="imap", auth="xoauth2", ca=ca)

        def logins() -> int:
            return sum(t.text().count("Logged in") for t in server.transcripts)

        patterns = [*_patterns(first), "Logged in"]  # the last: freed unwiped, a control
        daemon = patched_fetchmail.popen(["-f", str(rc), "-d", "1", "-N"], home=home,
                                         env=_scan_env(shim, home, patterns))
        try:
            assert wait_for(lambda: logins() >= 1), "first poll did not log in"
            token_file(pwfile, second)
            assert wait_for(lambda: logins() >= 3), "no logins with the second token"
        finally:
            patched_fetchmail.quit(home)
            daemon.communicate(timeout=60)
    finds = _finds(home)
    control = f"pattern {len(patterns) - 1} "
    assert any(f.startswith(control) for f in finds), f"the shim saw no freed reply: {finds}"
    assert [f for f in finds if not f.startswith(control)] == [], finds
