"""The mock server package: light to import, one command table per session class, and
MockStack wiring it all together."""

from __future__ import annotations

import dataclasses
import imaplib
import re
import smtplib
import socket
import subprocess
import sys

import pytest

import harness.mockserver as package
from harness.errors import ConfigError
from harness.mockserver import PROFILES, Faults, Mailbox
from harness.mockserver.imap import AUTH, NOT_AUTH, SELECTED, ImapSession
from harness.mockserver.pop3 import AUTHORIZATION, TRANSACTION, Pop3Session
from harness.mockserver.smtp import SmtpSession
from harness.mockserver.stack import MockStack
from tests.helpers.mailclients import xoauth2


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


def test_mock_stack_wires_provider_validator_ca_and_servers() -> None:
    with pytest.raises(ConfigError):
        MockStack(("imap", "nntp"))
    box = Mailbox.generate(2, 1000)
    stack = MockStack(tls={"imap": "implicit", "smtp": "starttls"}, mailbox=box,
                      user="u@example.com")
    with stack:
        assert stack.ca_path is not None and stack.ca_path.exists()
        assert [s.tls for s in stack.servers.values()] == ["implicit", "plain", "starttls"]
        token = stack.mint_token()["access_token"]
        imap = imaplib.IMAP4_SSL("127.0.0.1", stack["imap"].port,
                                 ssl_context=stack.ca.client_context() if stack.ca else None)
        imap.authenticate("XOAUTH2", lambda _: xoauth2("u@example.com", token))
        assert imap.select("INBOX") == ("OK", [b"2"])
        imap.logout()
        smtp = smtplib.SMTP("127.0.0.1", stack["smtp"].port)
        smtp.starttls(context=stack.ca.client_context() if stack.ca else None)
        smtp.ehlo()
        smtp.auth("XOAUTH2", lambda c=None: xoauth2("u@example.com", token).decode())
        smtp.sendmail("u@example.com", ["v@example.org"], b"Subject: s\r\n\r\nb\r\n")
        smtp.quit()
        assert stack.outbox.snapshot()[0].user == "u@example.com"
        assert "AUTHENTICATE XOAUTH2" in stack.transcript_text()
        ports = [s.port for s in stack.servers.values()]
        assert stack.errors == []
    for port in ports:  # stopped: nothing listens any more
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_the_package_docstring_names_every_profile_and_fault() -> None:
    doc = " ".join((package.__doc__ or "").split())
    profiles = re.search(r"Profiles \(profiles\.py\): ([^.]+)\.", doc)
    faults = re.search(r"\): (delay.*?)\.$", doc)
    assert profiles and faults, doc
    assert profiles[1].split(", ") == list(PROFILES)
    names = [f.name.replace("_", "-") for f in dataclasses.fields(Faults)]
    assert faults[1].split(", ") == names
