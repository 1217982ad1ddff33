"""The relay container: plugin installed alone, postfix configured, sendmail, queue and log."""

from __future__ import annotations

import socket

import pytest

from harness.relay.box import PostfixBox
from harness.relay.mail import message

pytestmark = pytest.mark.docker


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_mail_to_an_unreachable_relay_waits_in_the_deferred_queue(relay: PostfixBox) -> None:
    box = relay
    relayhost = f"[127.0.0.1]:{_closed_port()}"
    data = message("box", 1, "jane@example.com", "friend@remote.test")
    table = box.shared / "table"
    assert box.plugin_dir.endswith("/sasl2")
    box.configure(f"# a comment\nrelayhost = {relayhost}\nsmtp_sasl_security_options =\n", "",
                  {str(table): "a b\n"})
    assert box.postconf("relayhost", "mydestination", "smtp_sasl_security_options") == {
        "relayhost": relayhost, "mydestination": "", "smtp_sasl_security_options": ""}
    assert table.with_name("table.db").is_file()
    box.sendmail(data, "jane@example.com", ["friend@remote.test"])
    box.wait("the mail to be deferred", lambda: any(q.queue == "deferred" for q in box.queue()))
    (queued,) = box.queue()
    assert queued.sender == "jane@example.com"
    assert "Connection refused" in " ".join(queued.reasons)
    assert f"{queued.queue_id}: to=<friend@remote.test>" in box.log()
    # -oi: the lone "." line of the message did not end it early
    body = box.run(["postcat", "-bq", queued.queue_id])
    assert "\n.\n" in body and body.rstrip().endswith("last line")
    pid = box.master_pid()
    box.configure(f"relayhost = {relayhost}\n")  # a reconfiguration empties the queue
    assert box.queue() == [] and box.master_pid() == pid
