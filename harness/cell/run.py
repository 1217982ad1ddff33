"""One matrix cell end to end: provider, mail server, token refresher, fetchmail in a container.

What a cell checks (each failed check makes the cell `fail`, with the check as its reason):

1. fetchmail exits 0 (one-shot) and every seeded message is delivered exactly once, byte-exact
   under this rule: fetchmail runs with `set invisible` (no Received: header of its own),
   `no rewrite` (addresses untouched) and `stripcr` (the default for an MDA), so the MDA must
   receive the message as stored on the server with CRLF line ends turned into LF — nothing
   added, removed or reordered, headers and body alike.
2. The server's mailbox state matches the rc file: `keep` (starttls one-shot cells) leaves every
   message in place and, for IMAP, flagged \\Seen; otherwise every message is deleted.
3. The server's record (the mock's transcript; Dovecot's auth debug log, since Dovecot answers
   any reply to an error challenge with NO) shows the cell's mechanism (AUTHENTICATE XOAUTH2 /
   OAUTHBEARER for IMAP, AUTH XOAUTH2 / OAUTHBEARER for POP3) and no other login; never a
   password login (LOGIN, PASS, APOP; Dovecot: any other method); the client's answer to a
   SASL error challenge was RFC 7628's %x01 for OAUTHBEARER, an empty line for XOAUTH2. With
   an expired token (daemon cells) another SASL mechanism or a bare USER is tolerated, noted.
4. No access token, in raw or any base64 form (alone or inside the SASL string), appears in
   fetchmail's -vv output, the mock's transcript, or Dovecot's log outside the auth exchange.
5. Daemon cells: after the first poll the provider expires the token and mail arrives; a poll
   with the dead token must be refused and fetch nothing; then the refresher rotates the token
   and the same fetchmail process (re-reading its passwordfile every poll) fetches the waiting
   and a new message, the server having validated the rotated token.
6. Sanitizer cells: no ASan/UBSan report in fetchmail's output.
7. Long-token cells (a ~12 KB token): where the server takes SASL responses of any length,
   as any cell; where it has a limit the response exceeds (Dovecot: 8192 bytes), the server
   drops it and fetchmail must fail cleanly: an error exit (no crash, no hang), nothing
   fetched, the mailbox untouched, no token in its output.
8. Temporary-failure cells: the provider's introspection endpoint answers 503, so the server
   cannot check the (valid) token and says "try later" (IMAP `NO [UNAVAILABLE]`, POP3
   `-ERR [SYS/TEMP]`, no error challenge). fetchmail must report a busy server (exit 14,
   PS_SERVBUSY), not a refused login (exit 3, PS_AUTHFAIL: a daemon would mail the user that
   the password is invalid); try no second mechanism and no password; fetch nothing, the
   mailbox untouched, no token in its output.

`-dovecot` cells run all of this against Debian's Dovecot 2.3 (oauth2 passdb, RFC 7662
introspection at the mock provider; mail owned by `nobody`; auth_failure_delay = 0 and the
anvil penalty socket closed to the auth process, so refused logins are not slowed down).

A build that fails (series does not apply, code does not compile) fails its cells.

Infrastructure trouble (engine, image, provider) makes a cell `error`, not `fail`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import docker

from harness.build.container import Container
from harness.cell.boxes import BoxPool, Lent
from harness.cell.checks import (
    CellLog,
    CheckFailed,
    check_delivery,
    check_sanitizer,
    failure_reason,
    judge,
)
from harness.cell.mail import USER, find_leaks, seed_messages
from harness.cell.model import Cell
from harness.cell.rcfile import DELIVER_SCRIPT, IN, WORK, rcfile, wants_keep
from harness.cell.result import CellResult
from harness.cell.world import World, open_world
from harness.errors import HarnessError

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 120.0  # one-shot fetchmail run, seconds
EXIT_SERVBUSY, EXIT_AUTHFAIL = 14, 3  # fetchmail's PS_SERVBUSY and PS_AUTHFAIL
DAEMON_INTERVAL = 2  # fetchmail -d seconds
DAEMON_WAIT = 90.0
INSTALLED = "/usr/bin/fetchmail"  # what a package installs: run when a cell brings no binary
SETUP_FAILED = 125  # the cell's WORK could not be set up (fetchmail never exits with it)
NETWORK = "host"  # the cells' containers reach the servers on the host's loopback


# -- one cell -------------------------------------------------------------------------------


def run_cell(cell: Cell, binary: Path | None, image: str, client: docker.DockerClient,
             log_path: Path, server_image: str | None = None,
             boxes: BoxPool | None = None) -> CellResult:
    """Run `cell` with `binary` (None: the image's installed INSTALLED) in `image` (Dovecot
    cells: against Dovecot in `server_image`), in a container borrowed from `boxes` (a pool
    of its own without); returns pass/fail; raises HarnessError on infrastructure trouble."""
    clog = CellLog(log_path)
    clog.section("cell", f"{cell.identifier}\nbinary {binary or INSTALLED}\nimage {image}\n")
    checks: list[str] = []

    def play() -> None:
        with contextlib.ExitStack() as stack:
            pool = boxes or stack.enter_context(BoxPool(client, network_mode=NETWORK))
            world = stack.enter_context(open_world(cell, clog, server_image))
            container = pool.borrow(image)
            if cell.daemon:
                _daemon_run(cell, binary, container, world, clog, checks)
            else:
                _oneshot_run(cell, binary, container, world, clog, checks)

    return judge(cell, clog, log_path, checks, play)


def _stage(files: Path, binary: Path | None, world: World, rc: str) -> tuple[str, str]:
    """Write the cell's files into IN (`files` on the host); (the fetchmail to run: a copy of
    `binary`, else the installed one; the shell commands that make WORK before it runs)."""
    (files / "fetchmailrc").write_text(rc)
    (files / "deliver").write_text(DELIVER_SCRIPT)
    shutil.copyfile(world.ca_path, files / "ca.pem")
    shutil.copyfile(world.refresher.access_token_file, files / "token")
    for name in ("fetchmailrc", "token", "ca.pem"):
        (files / name).chmod(0o600)
    (files / "deliver").chmod(0o700)
    executables = ["deliver"]
    if binary is not None:
        shutil.copyfile(binary, files / "fetchmail")
        (files / "fetchmail").chmod(0o700)
        executables.append("fetchmail")
    # copies made by root in the container: fetchmail wants its rc file owned by its user,
    # and the cache directory behind IN may be mounted noexec
    names = " ".join(f"{IN}/{name}" for name in ["fetchmailrc", *executables])
    setup = f"mkdir {WORK} && cp {names} {WORK}/"
    if "sslcertpath" in rc:  # old 6.3: a directory of hashed CA certificates
        setup += (f" && mkdir {WORK}/certs && cp {IN}/ca.pem {WORK}/certs/ && "
                  f"(openssl rehash {WORK}/certs || c_rehash {WORK}/certs)")
    return (f"{WORK}/fetchmail" if binary is not None else INSTALLED), setup


def _command(setup: str, argv: list[str]) -> str:
    """The shell command that sets WORK up, then runs argv (SETUP_FAILED if it cannot)."""
    return f"{{ {setup}; }} || exit {SETUP_FAILED}; exec {shlex.join(argv)}"


def _check_setup(code: int, output: str) -> None:
    """HarnessError if the command's setup failed: the infrastructure's trouble, no verdict."""
    if code == SETUP_FAILED:
        raise HarnessError(f"could not set the cell up in its container: {output[-500:]}")


def _fetchmail_argv(program: str, extra: list[str]) -> list[str]:
    # no --pidfile (6.3.0 lacks it): FETCHMAILHOME puts the pid file in WORK anyway
    return [program, "-f", f"{WORK}/fetchmailrc", "--idfile", f"{WORK}/fetchids",
            "-vv", "--nosyslog", *extra]


_ENV = {"HOME": WORK, "FETCHMAILHOME": WORK, "LC_ALL": "C",
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0"}


def _oneshot_run(cell: Cell, binary: Path | None, container: AbstractContextManager[Lent],
                 world: World, clog: CellLog, checks: list[str]) -> None:
    token = world.refresher.refresh()
    world.tokens.append(token)
    checks.append("fetchmail-oauth2 refresh wrote the passwordfile from the provider")
    keep = wants_keep(cell)
    rc = rcfile(cell, world.server.port, keep=keep)
    clog.section("fetchmailrc", rc)
    too_large = _too_large(cell, token, world.server.sasl_limit)
    with container as (box, files, mail):
        program, setup = _stage(files, binary, world, rc)
        output: list[str] = []
        code = _run_with_timeout(box, setup, _fetchmail_argv(program, []), output,
                                 FETCH_TIMEOUT)
        text = "".join(output)
        clog.section(f"fetchmail -vv (exit {code})", text)
        _check_setup(code, text)
        check_sanitizer(cell, text, checks)
        delivered = _delivered(mail)
    if too_large:
        _check_clean_failure(cell, world, code, text, delivered, checks)
        return
    if cell.temp_failure:
        _check_temporary_failure(cell, world, code, text, delivered, checks)
        return
    if code != 0:
        raise CheckFailed(f"fetchmail exited {code}: {failure_reason(text)}")
    checks.append("fetchmail exited 0")
    check_delivery(delivered, world.seeded, clog, checks)
    world.server.check_mailbox(cell, world.seeded, keep, checks)
    world.server.check_logins(cell, text, world.tokens, checks)


def _too_large(cell: Cell, token: str, limit: int) -> bool:
    """Whether the cell's SASL response (base64) is over the server's limit."""
    if not limit:
        return False
    if cell.mechanism == "xoauth2":
        raw = f"user={USER}\x01auth=Bearer {token}\x01\x01"
    else:
        raw = f"n,a={USER},\x01auth=Bearer {token}\x01\x01"
    return 4 * ((len(raw.encode()) + 2) // 3) >= limit


def _check_clean_failure(cell: Cell, world: World, code: int, text: str,
                         delivered: list[tuple[str, bytes]], checks: list[str]) -> None:
    """A token too long for the server: it drops the connection; fetchmail must give up with
    an error (no crash, no hang, no fallback to a password), fetch nothing, lose nothing."""
    if code == 0 or code >= 124:
        raise CheckFailed(f"with a SASL response over the server's {world.server.sasl_limit} "
                          f"bytes fetchmail exited {code}: expected a clean error exit")
    if not world.server.saw_too_large():
        raise CheckFailed("the server never refused an oversized SASL response; it said: "
                          f"{_server_said(world.server.record())}")
    _nothing_fetched(cell, world, delivered, checks,
                     f"token over the server's {world.server.sasl_limit}-byte SASL limit: "
                     f"the server dropped it, fetchmail gave up cleanly (exit {code})")
    leaks = find_leaks(text, world.tokens)
    if leaks:
        raise CheckFailed(f"fetchmail -vv output leaks {', '.join(leaks)}")
    checks.append("no token (raw/base64) in fetchmail -vv output")


def _nothing_fetched(cell: Cell, world: World, delivered: list[tuple[str, bytes]],
                     checks: list[str], verdict: str) -> None:
    """A login that failed as it should: nothing delivered (then `verdict` holds), the
    mailbox untouched."""
    if delivered:
        raise CheckFailed(f"{len(delivered)} messages delivered without a login")
    checks.append(verdict)
    world.server.check_mailbox(cell, world.seeded, None, checks)


def _check_temporary_failure(cell: Cell, world: World, code: int, text: str,
                             delivered: list[tuple[str, bytes]], checks: list[str]) -> None:
    """The server could not validate the token now: a busy server, not a bad password."""
    if not world.server.temporary_failures():
        raise CheckFailed("the server never answered with a temporary failure; it said: "
                          f"{_server_said(world.server.record())}")
    if code != EXIT_SERVBUSY:
        what = " (AUTHFAIL: a refused login)" if code == EXIT_AUTHFAIL else ""
        raise CheckFailed(f"the server could not check the token for now, yet fetchmail exited "
                          f"{code}{what}: expected {EXIT_SERVBUSY} (SERVBUSY); "
                          f"{failure_reason(text)}")
    _nothing_fetched(cell, world, delivered, checks,
                     f"the server's token validation down: fetchmail reported a busy server "
                     f"(exit {code}), not a refused login")
    world.server.check_logins(cell, text, world.tokens, checks)


def _daemon_run(cell: Cell, binary: Path | None, container: AbstractContextManager[Lent],
                world: World, clog: CellLog, checks: list[str]) -> None:
    first = world.refresher.refresh()
    world.tokens.append(first)
    rc = rcfile(cell, world.server.port, keep=False)
    clog.section("fetchmailrc", rc)
    with container as (box, files, mail):
        program, setup = _stage(files, binary, world, rc)
        argv = _fetchmail_argv(program, ["--nodetach", "-d", str(DAEMON_INTERVAL)])
        daemon = _Daemon(box, _command(setup, argv), cell.identifier)
        try:
            daemon.wait_for_mail(mail, len(world.seeded))
            checks.append(f"daemon: first poll delivered {len(world.seeded)} messages")
            # mid-run the provider expires the token and new mail arrives: polls must fail
            failures = _auth_failures(world)
            world.provider.expire(first)
            _add_messages(world, 1)
            daemon.wait_until(lambda: _auth_failures(world) > failures,
                              "a poll with the expired token to be refused")
            if _count(mail) != len(world.seeded) - 1:
                raise CheckFailed("a message was delivered while the only token was expired")
            checks.append("daemon: expired token refused by the server, nothing fetched")
            # the refresher rotates it; fetchmail re-reads the passwordfile on its next poll
            second = world.refresher.refresh(force=True)
            world.tokens.append(second)
            if second == first or not world.provider.is_active(second):
                raise CheckFailed("fetchmail-oauth2 did not rotate to a new, active token")
            new = files / "token.new"  # replaced whole, as the refresher replaces its own
            shutil.copyfile(world.refresher.access_token_file, new)
            new.chmod(0o600)
            os.replace(new, files / "token")
            checks.append("daemon: fetchmail-oauth2 rotated the token (forced refresh)")
            _add_messages(world, 1)
            daemon.wait_for_mail(mail, len(world.seeded))
            introspected = [p.get("token") for e, p in list(world.provider.log)
                            if e == "introspect"]
            if second not in introspected:
                raise CheckFailed("the server never validated the rotated token")
            checks.append("daemon: after rotation the same fetchmail process fetched the "
                          "waiting and the new message with the rotated token")
        finally:
            daemon.stop()
            clog.section("fetchmail -vv (daemon)", daemon.text())
        delivered = _delivered(mail)
    text = daemon.text()
    check_sanitizer(cell, text, checks)
    check_delivery(delivered, world.seeded, clog, checks)
    world.server.check_mailbox(cell, world.seeded, False, checks)
    world.server.check_logins(cell, text, world.tokens, checks)


class _Daemon:
    """`fetchmail -d` (the shell `command`) running in `box`, its output streamed."""

    def __init__(self, box: Container, command: str, name: str) -> None:
        self.box = box
        self.output: list[str] = []
        self.code: int | None = None  # its exit code, once it has exited
        self.ended = threading.Event()  # its stream has ended (exited, or the engine failed)
        self.thread = threading.Thread(target=self._run, args=(command,),
                                       name=f"daemon-{name}", daemon=True)
        self.thread.start()

    def _run(self, command: str) -> None:
        try:
            self.code = self.box.run(command, env=_ENV, stream=self.output.append)
            self.output.append(f"\n[fetchmail exited {self.code}]\n")
        except Exception as exc:  # the container went away under us: recorded in the log
            self.output.append(f"\n[daemon stream ended: {exc}]\n")
        finally:
            self.ended.set()

    def text(self) -> str:
        return "".join(self.output)

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Until `condition` holds; CheckFailed if fetchmail ends or DAEMON_WAIT passes first."""
        deadline = time.monotonic() + DAEMON_WAIT
        while time.monotonic() < deadline:
            if condition():
                return
            if self.ended.is_set():
                if self.code is None:
                    raise HarnessError(f"fetchmail's output stream ended: {self.text()[-300:]}")
                _check_setup(self.code, self.text())
                raise CheckFailed(f"fetchmail exited {self.code} while waiting for {what}: "
                                  f"{failure_reason(self.text())}")
            time.sleep(0.1)
        raise CheckFailed(f"timed out after {DAEMON_WAIT:.0f}s waiting for {what}: "
                          f"{failure_reason(self.text())}")

    def wait_for_mail(self, mail: Path, count: int) -> None:
        """Until `count` messages are delivered (OUT, seen from the host at `mail`)."""
        self.wait_until(lambda: _count(mail) >= count, f"{count} delivered messages")

    def stop(self) -> None:
        self.box.run(f"kill $(head -1 {WORK}/fetchmail.pid 2>/dev/null || pidof fetchmail) "
                "2>/dev/null")
        self.thread.join(15)  # its stream ends when fetchmail has exited


def _server_said(record: str) -> str:
    """The server's last word in its record: a reply (mock) or why it hung up (Dovecot)."""
    said = [ln.strip() for ln in record.splitlines()
            if ln.startswith("S: ") or "Disconnected:" in ln]
    return said[-1][:300] if said else "(nothing)"


def _add_messages(world: World, count: int) -> None:
    for data in seed_messages(len(world.seeded) + 1, count):
        world.server.add(data)
        world.seeded.append(data)


def _auth_failures(world: World) -> int:
    """Refused authentications so far."""
    return world.server.refused()


def _count(mail: Path) -> int:
    """Messages the MDA delivered so far (OUT, seen from the host)."""
    return sum(1 for _ in mail.iterdir())


def _run_with_timeout(box: Container, setup: str, argv: list[str], output: list[str],
                      timeout: float) -> int:
    """Set WORK up and run argv, killing it (via `timeout`) if it hangs; its exit code."""
    command = _command(setup, ["timeout", "-k", "5", str(int(timeout)), *argv])
    return int(box.run(command, env=_ENV, stream=output.append))


def _delivered(mail: Path) -> list[tuple[str, bytes]]:
    """The delivered messages, in delivery order (read once fetchmail is done)."""
    return [(p.name, p.read_bytes()) for p in sorted(mail.iterdir()) if p.is_file()]
