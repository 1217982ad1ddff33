"""postfix relaying through Debian's Dovecot submission, the real peer the relay cells' mock
stands in for: the same configuration and refresh job, the same outcomes — delivered
byte-exact after XOAUTH2 with the current token; 535 and 454 deferred, then delivered by
`postqueue -f`; a 3 KB token accepted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cell.checks import CheckFailed
from harness.cell.log import CellLog
from harness.relay.box import MYHOSTNAME, PostfixBox
from harness.relay.mail import difference
from harness.relay.scenarios import Run, Scenario, arrival, deferred, nothing_bounced, prepare
from harness.relay.world import Account, Relay, world
from tests.helpers.skips import need_dovecot

pytestmark = pytest.mark.docker

DOVECOT = Relay("dovecot", "dovecot", dovecot=True)
JANE = Account("jane", "jane@example.com", "dovecot")


def _relayed(run: Run, data: bytes, mid: str, mark: int) -> None:
    """At the sink, with Dovecot's Received: above postfix's; Dovecot logged jane in with
    XOAUTH2 over TLS; the token it had validated was jane's current one."""
    sub = arrival(run, "dovecot", mid)
    assert difference(data, sub.data, MYHOSTNAME, hops=1) is None, sub.data[:600]
    assert sub.mail_from == JANE.user
    logins = re.findall(r"Login: user=<([^>]*)>, method=(\w+),.* TLS", run.world.peers[
        "dovecot"].log)
    assert (JANE.user, "XOAUTH2") in logins
    assert run.world.asked("dovecot", mark)[-1:] == [run.world.token(JANE)]


def test_postfix_relays_through_dovecot_as_through_the_mock(relay: PostfixBox,
                                                            tmp_path: Path) -> None:
    need_dovecot()
    scratch = relay.shared / f"dovecot-{tmp_path.name}"  # the relay container sees it
    scratch.mkdir()
    with world(scratch, [DOVECOT], [JANE]) as w:
        run = Run("relay-bookworm-dovecot", w, relay, CellLog(tmp_path / "cell.log"))
        try:
            prepare(run, Scenario((DOVECOT,), (JANE,), play=lambda _: None))
            provider = w.stacks["dovecot"].provider
            mark = w.mark("dovecot")
            data, mid = run.submit(JANE.user)
            _relayed(run, data, mid, mark)
            # an expired token: Dovecot answers 535 after the error challenge
            provider.expire(w.token(JANE))
            data, mid = run.submit(JANE.user)
            deferred(run, mid, "535 5.7.8")
            w.cron()
            mark = w.mark("dovecot")
            relay.flush()
            _relayed(run, data, mid, mark)
            # validation down: Dovecot's temporary failure
            provider.inject("introspect", "status", count=10**6, status=500)
            data, mid = run.submit(JANE.user)
            deferred(run, mid, "454 4.7.0")
            provider.clear_faults()
            provider.access_token_bytes = 2304  # the next refresh brings a 3 KB token
            w.cron()
            assert len(w.token(JANE)) > 3000
            mark = w.mark("dovecot")
            relay.flush()
            _relayed(run, data, mid, mark)
            nothing_bounced(run)
        except CheckFailed as exc:
            pytest.fail(f"{exc}\n{w.transcripts()[-3000:]}\n{run.cell_log()[-2000:]}")
