"""What each relay cell does and checks, judged by what the mock submission servers received.

sendmail        one mail, byte-exact, after AUTH XOAUTH2 (initial response) with the token the
                refresh job just wrote
rotation        refresh -> map rebuilt -> the next mail uses the new token, postfix neither
                restarted nor reloaded; again with two rebuilds in one second (the map's
                database keeps the mtime second postfix saw: only a new file is noticed)
expired         the provider expires the token: postfix defers (4.x.x in its log, the mail in
                the deferred queue); the refresh job runs, `postqueue -f` delivers it once;
                nothing bounced
validation-down the provider's token validation fails: the server answers 454, postfix defers;
                validation back, the job runs, `postqueue -f` delivers; nothing bounced
large-token     a 3 KB (Microsoft-size) token relays, sent as a continuation after
                `AUTH XOAUTH2`, not inline
two-senders     three accounts, two providers: sender_dependent_relayhost_maps picks each
                sender's relay and smtp_sender_dependent_authentication its own token
password-relay  a password account beside the OAuth one: a second transport chosen by
                sender_dependent_default_transport_maps relays it with AUTH PLAIN
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.cell.checks import CheckFailed
from harness.cell.log import CellLog
from harness.cell.relay import SCENARIOS
from harness.relay.box import MYHOSTNAME, PostfixBox
from harness.relay.mail import difference, message, message_id
from harness.relay.setup import postfix_setup
from harness.relay.world import MAP_NAME, Account, Relay, World

RECIPIENT = "friend@remote.test"
PASSWORD_USER = ("dave@isp.test", "dave-secret")


@dataclass
class Run:
    """One relay cell under way: its world, its postfix, its log and what it verified."""

    cell: str
    world: World
    box: PostfixBox
    clog: CellLog
    checks: list[str] = field(default_factory=list)
    sent: int = 0
    log_mark: int = 0  # length of postfix's log when the cell's configuration was in place

    def submit(self, sender: str) -> tuple[bytes, str]:
        self.sent += 1
        data = message(self.cell, self.sent, sender, RECIPIENT)
        self.box.sendmail(data, sender, [RECIPIENT])
        mid = message_id(data)
        assert mid is not None
        return data, mid

    def cell_log(self) -> str:
        return self.box.log()[self.log_mark:]


@dataclass(frozen=True)
class Scenario:
    relays: tuple[Relay, ...]
    accounts: tuple[Account, ...]
    play: Callable[[Run], None]
    token_bytes: int = 32
    password: bool = False


# -- checks ---------------------------------------------------------------------------------


def arrival(run: Run, relay: str, mid: str) -> Any:
    """The submission the relay's server stored for `mid` (waits for it; exactly one)."""
    server = run.world.server(relay)
    run.box.wait(f"{mid} to arrive at {relay}",
                 lambda: any(message_id(s.data) == mid for s in server.outbox.snapshot()))
    found = [s for s in server.outbox.snapshot() if message_id(s.data) == mid]
    if len(found) != 1:
        raise CheckFailed(f"{mid} arrived {len(found)} times at {relay}")
    return found[0]


def relayed(run: Run, account: Account, mid: str, data: bytes, mark: int) -> Any:
    """The mail arrived byte-exact, authenticated with XOAUTH2 as the account, over TLS, and
    of the account's tokens the relay validated since `mark` (see World.mark) its current
    one, and only that."""
    sub = arrival(run, account.relay, mid)
    token = run.world.token(account)
    if sub.mechanism != "XOAUTH2" or sub.user != account.user or not sub.tls:
        raise CheckFailed(f"{mid} arrived with mechanism={sub.mechanism} user={sub.user} "
                          f"tls={sub.tls}, want XOAUTH2 as {account.user} over TLS")
    if sub.mail_from != account.user or list(sub.rcpt_to) != [RECIPIENT]:
        raise CheckFailed(f"{mid}: envelope {sub.mail_from} -> {sub.rcpt_to}")
    where = difference(data, sub.data, MYHOSTNAME)
    if where is not None:
        raise CheckFailed(f"{mid} is not byte-exact: {where}")
    history = run.world.tokens[account.name]
    asked = [t for t in run.world.asked(account.relay, mark) if t in history]
    if token not in asked or any(t != token for t in asked):
        old = sorted({history.index(t) + 1 for t in asked if t != token})
        raise CheckFailed(f"{mid}: the server was given {account.user}'s token(s) "
                          f"{old or '(none)'} of {len(history)}, not (only) the current one")
    return sub


def deferred(run: Run, mid: str, reply: str) -> str:
    """The mail is in the deferred queue with a 4xx reason naming `reply`; its queue id."""
    def queued() -> bool:
        return any(q.queue == "deferred" for q in run.box.queue())

    run.box.wait(f"{mid} to be deferred", queued)
    waiting = [q for q in run.box.queue() if q.queue == "deferred"]
    if len(waiting) != 1:
        raise CheckFailed(f"{len(waiting)} mails deferred, want only {mid}")
    mail = waiting[0]
    reason = " ".join(mail.reasons)
    if reply not in reason:
        raise CheckFailed(f"{mid} deferred for {reason!r}, not for {reply!r}")
    line = next((ln for ln in run.cell_log().splitlines()
                 if f"{mail.queue_id}:" in ln and "status=deferred" in ln), "")
    if "dsn=4." not in line:
        raise CheckFailed(f"postfix logged no 4.x.x deferral of {mail.queue_id}: {line!r}")
    return mail.queue_id


def nothing_bounced(run: Run) -> None:
    text = run.cell_log()
    if "status=bounced" in text or "sender non-delivery notification" in text:
        raise CheckFailed("postfix bounced mail:\n" + "\n".join(
            ln for ln in text.splitlines() if "bounce" in ln)[-800:])
    for name in run.world.stacks:
        if any(not s.mail_from for s in run.world.server(name).outbox.snapshot()):
            raise CheckFailed(f"{name} received a bounce (null sender)")
    run.box.wait("postfix's queue to empty", lambda: not run.box.queue())


def auth_lines(run: Run, relay: str) -> list[str]:
    return [ln for t in run.world.server(relay).transcripts for ln in t.lines
            if ln.startswith("C: AUTH ")]


def first_mail(run: Run, account: Account) -> None:
    """The refresh job writes the first token; one mail relays with it."""
    mark = run.world.mark(account.relay)
    data, mid = run.submit(account.user)
    relayed(run, account, mid, data, mark)


# -- the cells ------------------------------------------------------------------------------

JANE = Account("jane", "jane@example.com", "gmail")


def _sendmail(run: Run) -> None:
    first_mail(run, JANE)
    if auth_lines(run, "gmail") != ["C: AUTH XOAUTH2 <redacted>"]:
        raise CheckFailed(f"want one AUTH XOAUTH2 with an initial response, got "
                          f"{auth_lines(run, 'gmail')}")
    nothing_bounced(run)
    run.checks.append("sendmail: the mail arrived byte-exact (one Received: added, LF->CRLF), "
                      "AUTH XOAUTH2 with the initial response, the refresh job's token, TLS")


def _rotation(run: Run) -> None:
    world, box = run.world, run.box
    first_mail(run, JANE)
    pid = box.master_pid()
    tokens = [world.token(JANE)]
    for _ in range(2):
        world.cron()
        tokens.append(world.token(JANE))
        mark = world.mark(JANE.relay)
        data, mid = run.submit(JANE.user)
        relayed(run, JANE, mid, data, mark)
    run.checks.append("rotation: refresh -> map rebuilt -> each next mail used the new token")
    # two rebuilds in one second: the second leaves the database's mtime second unchanged
    db = world.map_path.with_name(MAP_NAME + ".db")
    seen = os.stat(db).st_mtime_ns
    world.cron()
    landed = int(os.stat(db).st_mtime) == seen // 10**9
    os.utime(db, ns=(seen, seen))
    tokens.append(world.token(JANE))
    mark = world.mark(JANE.relay)
    data, mid = run.submit(JANE.user)
    relayed(run, JANE, mid, data, mark)
    if len(set(tokens)) != len(tokens):
        raise CheckFailed("the refresh job did not rotate the token each time")
    how = "as they ran" if landed else "its database's mtime set back into the first's second"
    run.checks.append(f"rotation: two rebuilds within one second ({how}): the next mail used "
                      "the newest token")
    restarted = [ln for ln in run.cell_log().splitlines()
                 if "reload" in ln or "starting the Postfix" in ln]
    if box.master_pid() != pid or restarted:
        raise CheckFailed(f"postfix was restarted or reloaded: {restarted}")
    nothing_bounced(run)
    run.checks.append(f"rotation: {len(tokens)} tokens, postfix neither restarted nor reloaded")


def _defer_then_flush(run: Run, break_it: Callable[[], None], mend: Callable[[], None],
                      reply: str, what: str) -> None:
    world, box = run.world, run.box
    first_mail(run, JANE)
    break_it()
    data, mid = run.submit(JANE.user)
    queue_id = deferred(run, mid, reply)
    if any(message_id(s.data) == mid for s in world.server("gmail").outbox.snapshot()):
        raise CheckFailed(f"{mid} arrived although postfix deferred it")
    run.checks.append(f"{what}: postfix deferred the mail ({reply}, 4.x.x in its log, "
                      f"{queue_id} in the deferred queue)")
    mend()
    world.cron()
    mark = world.mark(JANE.relay)
    box.flush()
    relayed(run, JANE, mid, data, mark)
    nothing_bounced(run)
    run.checks.append(f"{what}: the refresh job ran, postqueue -f delivered it once with the "
                      "new token; nothing bounced, the queue is empty")


def _expired(run: Run) -> None:
    world = run.world
    provider = world.stacks["gmail"].provider
    _defer_then_flush(run, lambda: provider.expire(world.token(JANE)), lambda: None,
                      "535 5.7.8", "expired token")
    lines = [ln for t in world.server("gmail").transcripts for ln in t.lines]
    if not any(ln.startswith("S: 334 ") and ln != "S: 334 " for ln in lines):
        raise CheckFailed("the server never sent the XOAUTH2 error challenge")


def _validation_down(run: Run) -> None:
    provider = run.world.stacks["gmail"].provider
    _defer_then_flush(
        run, lambda: provider.inject("introspect", "status", count=10**6, status=500),
        provider.clear_faults, "454 4.7.0", "validation down")


def _large_token(run: Run) -> None:
    first_mail(run, JANE)
    token = run.world.token(JANE)
    if len(token) < 3000:
        raise CheckFailed(f"the provider issued a {len(token)}-byte token, not a 3 KB one")
    if auth_lines(run, "gmail") != ["C: AUTH XOAUTH2"]:
        raise CheckFailed(f"want AUTH XOAUTH2 without an initial response (a continuation), "
                          f"got {auth_lines(run, 'gmail')}")
    nothing_bounced(run)
    run.checks.append(f"large-token: a {len(token)}-byte token relayed as a continuation "
                      "after AUTH XOAUTH2")


BOB = Account("bob", "bob@example.org", "microsoft")
CAROL = Account("carol", "carol@example.com", "gmail")


def _two_senders(run: Run) -> None:
    sent = []
    marks = {name: run.world.mark(name) for name in run.world.stacks}
    for account in (JANE, BOB, CAROL):
        sent.append((account, *run.submit(account.user)))
    for account, data, mid in sent:
        relayed(run, account, mid, data, marks[account.relay])
    for name, want in (("gmail", 2), ("microsoft", 1)):
        got = len(run.world.server(name).outbox)
        if got != want:
            raise CheckFailed(f"{name} received {got} mails, want {want}")
    tokens = {run.world.token(a) for a in (JANE, BOB, CAROL)}
    if len(tokens) != 3:
        raise CheckFailed("two accounts share a token")
    nothing_bounced(run)
    run.checks.append("two-senders: each sender went to its own relay "
                      "(sender_dependent_relayhost_maps) with its own token "
                      "(smtp_sender_dependent_authentication); two accounts on one relay")


def _password_relay(run: Run) -> None:
    first_mail(run, JANE)
    user = PASSWORD_USER[0]
    data, mid = run.submit(user)
    sub = arrival(run, "isp", mid)
    if sub.mechanism != "PLAIN" or sub.user != user or not sub.tls:
        raise CheckFailed(f"{mid} arrived with mechanism={sub.mechanism} user={sub.user}, "
                          f"want PLAIN as {user} over TLS")
    where = difference(data, sub.data, MYHOSTNAME)
    if where is not None:
        raise CheckFailed(f"{mid} is not byte-exact: {where}")
    if any("XOAUTH2" in ln for ln in auth_lines(run, "isp")):
        raise CheckFailed("postfix offered the OAuth token to the password relay")
    if not any("postfix/smtp-password/" in ln and "status=sent" in ln
               for ln in run.cell_log().splitlines()):
        raise CheckFailed("the password mail did not go through the smtp-password transport")
    if len(run.world.server("gmail").outbox) != 1:
        raise CheckFailed("the password mail also reached the OAuth relay")
    nothing_bounced(run)
    run.checks.append("password-relay: the password sender went through the second transport "
                      "(sender_dependent_default_transport_maps) with AUTH PLAIN, the OAuth "
                      "sender through smtp with XOAUTH2")


GMAIL = Relay("gmail", "gmail")
MICROSOFT = Relay("microsoft", "microsoft")
ISP = Relay("isp", "dovecot", passwords=(PASSWORD_USER,))

PLANS: dict[str, Scenario] = {
    "sendmail": Scenario((GMAIL,), (JANE,), _sendmail),
    "rotation": Scenario((GMAIL,), (JANE,), _rotation),
    "expired": Scenario((GMAIL,), (JANE,), _expired),
    "validation-down": Scenario((GMAIL,), (JANE,), _validation_down),
    "large-token": Scenario((GMAIL,), (JANE,), _large_token, token_bytes=2304),
    "two-senders": Scenario((GMAIL, MICROSOFT), (JANE, BOB, CAROL), _two_senders),
    "password-relay": Scenario((GMAIL, ISP), (JANE,), _password_relay, password=True),
}


assert tuple(PLANS) == SCENARIOS, "harness.cell.relay.SCENARIOS names the plans, in order"


def prepare(run: Run, scenario: Scenario) -> None:
    """postfix configured as `example postfix` prints, then the first refresh job."""
    world = run.world
    world.use_container_postmap(run.box.box.id)
    password = None
    if scenario.password:
        key = world.relay_key("isp")
        password = {PASSWORD_USER[0]: (key, f"{PASSWORD_USER[0]}:{PASSWORD_USER[1]}")}
    setup = postfix_setup(world, password)
    run.clog.section("fetchmail-oauth2 example postfix", setup.printed)
    run.clog.section("main.cf (added)", setup.main_cf)
    if setup.master_cf.strip():
        run.clog.section("master.cf (added)", setup.master_cf)
    run.box.configure(setup.main_cf, setup.master_cf, setup.tables)
    run.log_mark = len(run.box.log())
    world.cron()
    run.checks.append("postfix configured with what `fetchmail-oauth2 example postfix` printed; "
                      "the refresh job wrote the SASL map")
