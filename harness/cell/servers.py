"""The mail server a cell talks to: the project's mock (the default) or Debian's Dovecot 2.3.

Both give the cell the same handles: the port for its protocol and transport, mail to add
mid-run, refused logins so far, the mailbox after the run, the server's own record of the
logins. They differ in where that record comes from: the mock keeps a transcript; Dovecot
answers any reply to the SASL error challenge with `NO [AUTHENTICATIONFAILED]`, so whether
fetchmail answered `AQ==` / the empty line shows only in Dovecot's auth debug log
(harness.cell.dovecotlog).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from harness.cell import dovecotlog
from harness.cell.checks import CheckFailed, check_mailbox, check_transcript
from harness.cell.mail import find_leaks
from harness.cell.model import Cell

if TYPE_CHECKING:
    from harness.mockserver.controller import MailServerController
    from harness.mockserver.dovecot import DovecotInstance
    from harness.mockserver.mailbox import Mailbox

DOVECOT_SASL_LIMIT = 8192  # Dovecot drops a SASL response this long or longer (with its CR)
# the mock's replies when it cannot validate a token now (Dovecot's words, RFC 5530 / 3206)
_TEMPORARY = ("[UNAVAILABLE]", "[SYS/TEMP]")
# what fetchmail -vv shows of a password login (the secret itself is masked)
_PASSWORD_COMMAND = re.compile(r"(?:IMAP|POP3)> (?:A\d+ )?(LOGIN|PASS|APOP)\b")


class CellServer(Protocol):
    name: str
    port: int
    sasl_limit: int  # the longest SASL response it takes is one byte less (0: no limit)

    def add(self, data: bytes) -> None: ...

    def refused(self) -> int:
        """Logins refused so far (the daemon cell waits for one more)."""
        ...

    def temporary_failures(self) -> int:
        """Logins the server could not check (its token validation down): "try later"."""
        ...

    def record(self) -> str:
        """What the server recorded of the run, for the cell log."""
        ...

    def saw_too_large(self) -> bool: ...

    def check_mailbox(self, cell: Cell, seeded: list[bytes], keep: bool | None,
                      checks: list[str]) -> None:
        """keep: the rc file's `keep`; None: the run must have left the mailbox untouched."""
        ...

    def check_logins(self, cell: Cell, fetchmail_output: str, tokens: list[str],
                     checks: list[str]) -> None:
        """Mechanism used, no password login, the error challenge answered right, no leak."""
        ...


class MockServer:
    def __init__(self, controller: MailServerController, mailbox: Mailbox) -> None:
        self.name = "mock"
        self.controller, self.mailbox = controller, mailbox
        self.port = controller.port
        self.sasl_limit = int(getattr(controller.config.profile, "sasl_response_limit", 0))

    def add(self, data: bytes) -> None:
        self.mailbox.add(data)

    def refused(self) -> int:
        return sum(1 for line in self.record().splitlines()
                   if line.startswith("S: ") and "Authentication failed" in line)

    def temporary_failures(self) -> int:
        return sum(1 for line in self.record().splitlines()
                   if line.startswith("S: ") and any(code in line for code in _TEMPORARY))

    def record(self) -> str:
        return "\n".join(t.text() for t in self.controller.transcripts)

    def saw_too_large(self) -> bool:
        return "too large" in self.record().lower()

    def check_mailbox(self, cell: Cell, seeded: list[bytes], keep: bool | None,
                      checks: list[str]) -> None:
        if keep is None:
            touched = self.mailbox.deleted_uids() | self.mailbox.seen_uids()
            if touched or len(self.mailbox.messages) != len(seeded):
                raise CheckFailed(f"the failed login changed the mailbox ({sorted(touched)})")
            checks.append("mailbox untouched")
            return
        check_mailbox(cell, self.mailbox, seeded, keep, checks)

    def check_logins(self, cell: Cell, fetchmail_output: str, tokens: list[str],
                     checks: list[str]) -> None:
        check_transcript(cell, self.record(), self.controller, fetchmail_output, tokens, checks)


class DovecotServer:
    def __init__(self, dovecot: DovecotInstance, cell: Cell) -> None:
        self.name = "dovecot"
        self.dovecot = dovecot
        implicit = cell.transport == "tls"
        self.port = {"imap": dovecot.imaps_port if implicit else dovecot.imap_port,
                     "pop3": dovecot.pop3s_port if implicit else dovecot.pop3_port}[cell.protocol]
        self.sasl_limit = DOVECOT_SASL_LIMIT

    def add(self, data: bytes) -> None:
        self.dovecot.add_message(data)

    def refused(self) -> int:
        return dovecotlog.parse(self.dovecot.log).refused

    def temporary_failures(self) -> int:
        return dovecotlog.parse(self.dovecot.log).temporary_failures

    def record(self) -> str:
        return self.dovecot.log

    def saw_too_large(self) -> bool:
        return dovecotlog.parse(self.dovecot.log).too_large > 0

    def check_mailbox(self, cell: Cell, seeded: list[bytes], keep: bool | None,
                      checks: list[str]) -> None:
        """The maildir after the run: `new/NAME` or `cur/NAME:2,FLAGS` (S seen, T deleted)."""
        names = self.dovecot.messages()
        flags = [name.partition(":2,")[2] for name in names]
        held = [f for f in flags if "T" not in f]  # \Deleted but not expunged counts as gone
        if keep is None:
            if len(held) != len(seeded) or any("S" in f for f in flags):
                raise CheckFailed(f"the failed login changed the maildir: {names}")
            checks.append("maildir untouched")
        elif keep:
            if len(held) != len(seeded):
                raise CheckFailed(f"`keep` configured but the maildir holds {names}")
            if cell.protocol == "imap" and not all("S" in f for f in held):
                raise CheckFailed(f"messages not marked \\Seen: {names}")
            checks.append("keep: every message left in the maildir"
                          + (", marked \\Seen" if cell.protocol == "imap" else ""))
        else:
            if held:
                raise CheckFailed(f"messages not deleted from the maildir: {names}")
            checks.append("every message deleted from the maildir")

    def check_logins(self, cell: Cell, fetchmail_output: str, tokens: list[str],
                     checks: list[str]) -> None:
        text = self.dovecot.log
        log = dovecotlog.parse(text)
        mech = cell.mechanism.upper()
        tried = [a.mechanism for a in log.attempts]
        if mech not in tried:
            raise CheckFailed(f"Dovecot's auth log shows no {mech} attempt "
                              f"(saw: {', '.join(tried) or 'none'})")
        if log.other_methods:
            raise CheckFailed(f"fetchmail tried {', '.join(sorted(set(log.other_methods)))} "
                              "(Dovecot refused it): never a password login with a token")
        others = sorted(set(tried) - {mech})
        if others and not cell.daemon:
            raise CheckFailed(f"fetchmail also tried {', '.join(others)}")
        if others:
            checks.append(f"note: with the expired token fetchmail also tried {others}")
        wrong = dovecotlog.wrong_answers(log)
        if wrong:
            raise CheckFailed(f"wrong answer to the SASL error challenge: {wrong[0]} "
                              "(RFC 7628: %x01 for OAUTHBEARER; an empty line for XOAUTH2)")
        answered = [a for a in log.attempts if a.answer is not None]
        if answered:
            checks.append(f"Dovecot's auth log: {len(answered)} error challenge(s) answered "
                          "as RFC 7628 / Google want")
        if not cell.long_token and not cell.temp_failure:
            if log.logins.count(mech) < 1:
                raise CheckFailed(f"Dovecot logged no successful {mech} login")
            checks.append(f"Dovecot logged {log.logins.count(mech)} {mech} login(s)")
        passwords = _PASSWORD_COMMAND.findall(fetchmail_output)
        if passwords:
            raise CheckFailed(f"fetchmail sent a password command ({passwords[0]})")
        for where, body in (("fetchmail -vv output", fetchmail_output),
                            ("Dovecot's log outside the auth exchange",
                             dovecotlog.non_auth_lines(text))):
            leaks = find_leaks(body, tokens)
            if leaks:
                raise CheckFailed(f"{where} leaks {', '.join(leaks)}")
        checks.append(f"no token (raw/base64) in fetchmail -vv output or Dovecot's log outside "
                      f"the SASL exchange ({len(tokens)} token(s) checked)")
