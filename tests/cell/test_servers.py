"""The Dovecot side of a cell without Docker: maildir states and auth-log verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cell.checks import CheckFailed
from harness.cell.model import Cell
from harness.cell.servers import DovecotServer
from tests.helpers.dovecot_logs import (
    EXPIRED_XOAUTH2,
    ROTATED_OAUTHBEARER,
    UNAVAILABLE_OAUTHBEARER,
)


class _Dovecot:
    """What DovecotServer reads of a DovecotInstance."""

    def __init__(self, names: list[str], log: str = "") -> None:
        self.names, self.log = names, log
        self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port = 143, 993, 110, 995
        self.root = Path("/nonexistent")

    def messages(self) -> list[str]:
        return self.names


def _server(cell: str, names: list[str], log: str = "") -> tuple[DovecotServer, Cell]:
    c = Cell.parse(cell)
    return DovecotServer(_Dovecot(names, log), c), c  # type: ignore[arg-type]


SEEDED = [b"a", b"b"]


def test_ports_follow_protocol_and_transport() -> None:
    assert _server("6.4.33-oauth64-bookworm-imap-xoauth2-tls-dovecot", [])[0].port == 993
    assert _server("6.4.33-oauth64-bookworm-pop3-xoauth2-starttls-dovecot", [])[0].port == 110


@pytest.mark.parametrize(("names", "keep", "ok"), [
    ([], False, True),
    (["cur/1.M1:2,T", "cur/2.M2:2,ST"], False, True),  # \Deleted, not yet expunged
    (["cur/1.M1:2,S"], False, False),
    (["cur/1.M1:2,S", "cur/2.M2:2,S"], True, True),
    (["cur/1.M1:2,S", "new/2.M2"], True, False),  # IMAP keep wants \Seen
    (["cur/1.M1:2,", "cur/2.M2:2,"], None, True),
    (["cur/1.M1:2,S", "cur/2.M2:2,"], None, False),
])
def test_maildir_states(names: list[str], keep: bool | None, ok: bool) -> None:
    server, cell = _server("6.4.33-oauth64-bookworm-imap-xoauth2-tls-dovecot", names)
    checks: list[str] = []
    if ok:
        server.check_mailbox(cell, SEEDED, keep, checks)
        assert checks
    else:
        with pytest.raises(CheckFailed):
            server.check_mailbox(cell, SEEDED, keep, checks)


def test_a_rotation_that_dovecot_logged_passes() -> None:
    server, cell = _server("6.4.33-oauth64-bookworm-pop3-oauthbearer-tls-daemon-dovecot", [],
                           ROTATED_OAUTHBEARER)
    checks: list[str] = []
    server.check_logins(cell, "fetchmail: POP3> AUTH OAUTHBEARER *\n", ["mock-at-x"], checks)
    assert "Dovecot logged 1 OAUTHBEARER login(s)" in checks
    assert server.refused() == 1


def test_a_temporary_failure_needs_no_login() -> None:
    server, cell = _server("6.4.33-oauth64-bookworm-imap-oauthbearer-tls-tempfail-dovecot", [],
                           UNAVAILABLE_OAUTHBEARER)
    checks: list[str] = []
    server.check_logins(cell, "fetchmail: IMAP> A0001 AUTHENTICATE OAUTHBEARER *\n",
                        ["mock-at-x"], checks)
    assert (server.temporary_failures(), server.refused()) == (1, 0)
    with pytest.raises(CheckFailed, match="no successful OAUTHBEARER login"):  # a plain cell
        _server("6.4.33-oauth64-bookworm-imap-oauthbearer-tls-dovecot", [],
                UNAVAILABLE_OAUTHBEARER)[0].check_logins(
            Cell.parse("6.4.33-oauth64-bookworm-imap-oauthbearer-tls-dovecot"), "", [], [])


@pytest.mark.parametrize(("log", "output", "message"), [
    (EXPIRED_XOAUTH2, "", "no successful XOAUTH2 login"),
    (ROTATED_OAUTHBEARER.replace("CONT\t1\tAQ== (", "CONT\t1\t ("), "",
     "OAUTHBEARER answered ''"),
    (ROTATED_OAUTHBEARER, "fetchmail: POP3> PASS *\n", "password command (PASS)"),
    (ROTATED_OAUTHBEARER + "\nimap-login: Info: Authenticate PLAIN failed: x: user=<>, "
     "method=PLAIN", "", "tried PLAIN"),
    (ROTATED_OAUTHBEARER.replace("user=<user@example.com>", "user=<mock-at-x>"), "",
     "Dovecot's log outside the auth exchange leaks"),
])
def test_what_dovecot_logged_fails_a_cell(log: str, output: str, message: str) -> None:
    server, cell = _server("6.4.33-oauth64-bookworm-pop3-oauthbearer-tls-daemon-dovecot", [],
                           log)
    if "XOAUTH2" in log.split("\n", 1)[0]:
        server, cell = _server("6.4.33-oauth64-bookworm-imap-xoauth2-tls-dovecot", [], log)
    with pytest.raises(CheckFailed, match=message.replace("(", r"\(").replace(")", r"\)")):
        server.check_logins(cell, output, ["mock-at-x"], [])
