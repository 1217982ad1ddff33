"""Token files, rc files and log checks shared by the tests of the patched fetchmail."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from pathlib import Path

from harness.mockserver.tls import TestCA

USER = "user@example.org"
MESSAGES = [
    f"From: a@example.org\r\nSubject: test {i}\r\n\r\nbody {i}\r\n".encode() for i in (1, 2)
]
NOTICE = "fetchmail authentication failed"  # subject of the daemon's "bad password" mail


def token_file(path: Path, token: str, ending: str = "\n") -> Path:
    """Write the token as a refresher does: a new file, mode 600, renamed into place."""
    tmp = path.with_suffix(".new")
    tmp.write_text(token + ending)
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return path


def tls_options(tls: str, ca: TestCA | None) -> str:
    """implicit TLS, mandatory STARTTLS, or plain (no TLS at all: `sslproto ''`)."""
    if tls == "plain":
        return "sslproto ''"
    assert ca is not None
    mode = "ssl" if tls == "implicit" else "sslproto 'tls1.2+'"
    return f'{mode} sslcertck sslcertfile "{ca.ca_path}"'


def rcfile(home: Path, *, port: int, protocol: str, auth: str, tls: str = "implicit",
           ca: TestCA | None = None, user_options: str = 'passwordfile "token"',
           server_options: str = "", name: str = "fetchmailrc") -> Path:
    """A .fetchmailrc in `home` delivering to `home`/mbox; the token file is `home`/token
    unless `user_options` says otherwise (a relative passwordfile is relative to the rc)."""
    rc = home / name
    rc.write_text(
        "set no syslog\n"
        f"poll localhost service {port} protocol {protocol} auth {auth} timeout 30 "
        f"{server_options}\n"
        f'  user "{USER}" {user_options}\n'
        f"  {tls_options(tls, ca)}\n"
        f'  keep fetchall mda "cat >> {home / "mbox"}"\n'
    )
    rc.chmod(0o600)
    return rc


def delivered(home: Path) -> str:
    mbox = home / "mbox"
    return mbox.read_text(errors="replace") if mbox.exists() else ""


def leaks(text: str, token: str) -> list[str]:
    """Traces of the token (raw or inside a base64 blob), or of a sanitizer report."""
    found = ["raw token"] if token in text else []
    found += [s for s in ("AddressSanitizer", "runtime error:", "LeakSanitizer") if s in text]
    for word in text.split():
        if len(word) > 40:
            try:
                if token[:24].encode() in base64.b64decode(word + "==="):
                    found.append("base64 blob")
            except ValueError:
                pass
    return found


def wait_for(done: Callable[[], bool], deadline: float = 60.0) -> bool:
    """Poll `done` until it holds or `deadline` seconds pass (a deadline, not a timing)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(0.1)
    return done()
