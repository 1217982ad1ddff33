"""The mock server package: light to import, one command table per session class."""

from __future__ import annotations

import subprocess
import sys

from harness.mockserver.imap import AUTH, NOT_AUTH, SELECTED, ImapSession
from harness.mockserver.pop3 import AUTHORIZATION, TRANSACTION, Pop3Session
from harness.mockserver.smtp import SmtpSession


def test_import_loads_neither_docker_nor_the_build_code() -> None:
    code = (
        "import sys, harness.mockserver, harness.mockserver.stack\n"
        "heavy = sorted(m for m in sys.modules if m == 'docker' or m.startswith('docker.')"
        " or m.startswith(('harness.build', 'harness.container', 'harness.engine',"
        " 'harness.images', 'harness.e2e', 'harness.cell', 'harness.matrix')))\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_command_tables_are_built_once_per_class_with_their_states() -> None:
    assert ImapSession.commands["SELECT"].states == frozenset({AUTH, SELECTED})
    assert ImapSession.commands["FETCH"].states == frozenset({SELECTED})
    assert ImapSession.commands["AUTHENTICATE"].states == frozenset({NOT_AUTH})
    assert ImapSession.commands["LSUB"].handler is ImapSession.commands["LIST"].handler
    assert ImapSession.commands["NOOP"].states is None
    assert Pop3Session.commands["RETR"].states == frozenset({TRANSACTION})
    assert Pop3Session.commands["AUTH"].states == frozenset({AUTHORIZATION})
    assert "RETR" not in ImapSession.commands and "FETCH" not in Pop3Session.commands
    assert {"EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA", "STARTTLS"} <= set(
        SmtpSession.commands
    )
