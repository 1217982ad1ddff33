"""The checks of one matrix cell (see harness.cell.run for what each one means)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cell.log import CellLog
from harness.cell.mail import auth_attempts, expected_delivery, find_leaks, message_id
from harness.cell.model import Cell
from harness.cell.result import CellResult

if TYPE_CHECKING:
    from harness.cell.kinds import MatrixCell
    from harness.mockserver.controller import MailServerController
    from harness.mockserver.mailbox import Mailbox

# in fetchmail's -v trace: a command that logs in, and a server's refusal of a command
_AUTH_COMMAND = re.compile(
    r"\b(?:IMAP|POP3)> (?:\S+ )?(?:AUTHENTICATE|AUTH|LOGIN|USER|PASS|APOP)\b")
_REFUSAL = re.compile(r"\b(?:IMAP|POP3)< (?:\S+ (?:NO|BAD)\b|-ERR\b)")
_ERROR_WORDS = ("error", "fail", "refus", "denied", "invalid", "unknown", "cannot",
                "timed out", "no such")
# what fetchmail -v says about a server certificate it goes on to accept: details, not causes
_CERT_DETAILS = re.compile(r"(?:Unknown )?(?:Issuer|Subject) |Server certificate:\s*$")


def failure_reason(text: str) -> str:
    """Why a fetchmail run failed, from its -v output: the server's refusal of the last
    authentication command (its own words: `NO [AUTHENTICATIONFAILED] ...`, `-ERR [SYS/TEMP]
    ...`); without one, the first line that reads like an error and is not a detail of the
    server's certificate ("Unknown Issuer CommonName"); else the last line."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    logins = [i for i, ln in enumerate(lines) if _AUTH_COMMAND.search(ln)]
    if logins:
        refusals = [ln for ln in lines[logins[-1] + 1:] if _REFUSAL.search(ln)]
        if refusals:
            return refusals[0][:300]
    errors = [ln for ln in lines if "running as root" not in ln.lower()
              and any(w in ln.lower() for w in _ERROR_WORDS)]
    causes = [ln for ln in errors if not _CERT_DETAILS.search(ln)]
    return causes[0][:300] if causes else (lines or ["(no output)"])[-1][:300]


class CheckFailed(Exception):
    """A cell's check did not hold: the cell fails with this message."""


def judge(cell: MatrixCell, clog: CellLog, log_path: Path, checks: list[str],
          play: Callable[[], None]) -> CellResult:
    """Run a cell's `play` (which appends to `checks`): pass, or fail on CheckFailed; any
    other exception is the infrastructure's (logged as such, raised). The verdict ends the
    cell log."""
    started = time.monotonic()
    try:
        play()
    except CheckFailed as exc:
        clog.section("verdict", f"FAIL: {exc}")
        return CellResult(cell, "fail", str(exc), time.monotonic() - started,
                          str(log_path), checks=checks)
    except Exception as exc:
        clog.section("verdict", f"ERROR (infrastructure): {type(exc).__name__}: {exc}")
        raise
    clog.section("verdict", "PASS\n" + "\n".join(checks))
    return CellResult(cell, "pass", "", time.monotonic() - started, str(log_path),
                      checks=checks)


def check_delivery(delivered: list[tuple[str, bytes]], seeded: list[bytes], clog: CellLog,
                   checks: list[str]) -> None:
    if len(delivered) != len(seeded):
        raise CheckFailed(f"{len(delivered)} messages delivered, expected {len(seeded)}")
    wanted = [expected_delivery(m) for m in seeded]
    by_id = {message_id(w): w for w in wanted}
    seen: set[str] = set()
    for name, data in delivered:
        mid = message_id(data)
        if mid is None or mid not in by_id:
            raise CheckFailed(f"delivered {name} is not one of the seeded messages")
        if mid in seen:
            raise CheckFailed(f"message {mid} delivered twice")
        seen.add(mid)
        want = by_id[mid]
        if data != want:
            where = first_difference(want, data)
            clog.section(f"delivered {name} differs from {mid}", where)
            raise CheckFailed(f"message {mid} not byte-exact: {where}")
    checks.append(f"{len(seeded)} messages delivered byte-exact (CRLF->LF, nothing added)")


def first_difference(want: bytes, got: bytes) -> str:
    i = next((k for k in range(min(len(want), len(got))) if want[k] != got[k]),
             min(len(want), len(got)))
    return (f"first difference at byte {i} (expected {len(want)} bytes, got {len(got)}): "
            f"expected {want[max(0, i - 20):i + 30]!r}, got {got[max(0, i - 20):i + 30]!r}")


def check_mailbox(cell: Cell, box: Mailbox, seeded: list[bytes], keep: bool,
                  checks: list[str]) -> None:
    with box.lock:
        all_msgs = box.messages + box.expunged
        uids = {m.uid for m in all_msgs}
    deleted = box.deleted_uids()
    if len(uids) != len(seeded):
        raise CheckFailed(f"server holds {len(uids)} messages, expected {len(seeded)}")
    if keep:
        if deleted:
            raise CheckFailed(f"`keep` configured but messages {sorted(deleted)} were deleted")
        if cell.protocol == "imap":
            unseen = uids - box.seen_uids()
            if unseen:
                raise CheckFailed(f"messages {sorted(unseen)} were not marked \\Seen")
            checks.append("keep: every message left on the server, marked \\Seen")
        else:
            checks.append("keep: every message left on the server")
    else:
        if deleted != uids:
            raise CheckFailed(f"messages {sorted(uids - deleted)} were not deleted")
        checks.append("every message deleted on the server")


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def check_sanitizer(cell: Cell, output: str, checks: list[str]) -> None:
    """Sanitizer builds: any ASan/UBSan report in fetchmail's output fails the cell."""
    found = [m for m in SANITIZER_MARKERS if m in output]
    if found:
        line = next(ln for ln in output.splitlines() if any(m in ln for m in found))
        raise CheckFailed(f"sanitizer report: {line.strip()[:200]}")
    if cell.sanitizer:
        checks.append(f"no {cell.sanitizer}/ubsan report in fetchmail's output")


def check_transcript(cell: Cell, transcript: str, server: MailServerController,
                     fetchmail_output: str, tokens: list[str], checks: list[str]) -> None:
    """Mechanism used, no password fallback, RFC 7628 error exchange kept, no token leaks.

    One-shot cells hold a valid token, so any other mechanism is a failure. Daemon cells also
    poll with an expired token; trying another SASL mechanism then is tolerated (and noted),
    sending the token as a password or botching the error challenge is not.
    """
    mech = cell.mechanism.upper()
    verb = "AUTHENTICATE" if cell.protocol == "imap" else "AUTH"
    if "C: " not in transcript:
        raise CheckFailed("the server transcript is empty")
    mechanisms, passwords = auth_attempts(transcript, cell.protocol)
    if mech not in mechanisms:
        raise CheckFailed(f"server transcript shows no `{verb} {mech}` "
                          f"(saw: {', '.join(mechanisms) or 'none'})")
    sent_secret = [p for p in passwords if p in ("PASS", "LOGIN", "APOP")]
    if sent_secret:
        raise CheckFailed(f"fetchmail fell back to a password login ({sent_secret[0]}), "
                          "sending the bearer token as a password")
    if passwords and not cell.daemon:
        raise CheckFailed(f"fetchmail started a password login ({passwords[0]})")
    if passwords:
        checks.append("note: with the expired token fetchmail began a password login "
                      f"({', '.join(passwords)}) and gave up before sending a secret")
    violations = [v for t in server.transcripts for v in t.violations]
    if violations:
        raise CheckFailed(f"fetchmail broke the protocol: {violations[0]} (RFC 7628 wants a "
                          "single %x01 after an OAUTHBEARER error challenge, Google an empty "
                          "line after XOAUTH2's)")
    others = sorted(set(mechanisms) - {mech})
    if others and not cell.daemon:
        raise CheckFailed(f"fetchmail also tried {verb} {', '.join(others)}")
    if others:
        checks.append(f"note: with the expired token fetchmail also tried {', '.join(others)}")
    if server.errors:
        raise CheckFailed(f"mock server error: {server.errors[0]}")
    checks.append(f"server transcript shows {verb} {mech}")
    for where, text in (("fetchmail -vv output", fetchmail_output),
                        ("server transcript", transcript)):
        leaks = find_leaks(text, tokens)
        if leaks:
            raise CheckFailed(f"{where} leaks {', '.join(leaks)}")
    checks.append(f"no token (raw/base64) in fetchmail -vv output or server transcript "
                  f"({len(tokens)} token(s) checked)")
