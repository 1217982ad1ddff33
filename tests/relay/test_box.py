"""The relay container: plugin installed alone, postfix configured, sendmail, queue and log."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.build.engine import ensure_engine
from harness.relay.box import PostfixBox
from harness.relay.mail import message
from harness.relay.plugin import PluginBuild

pytestmark = pytest.mark.docker


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_mail_to_an_unreachable_relay_waits_in_the_deferred_queue(
    relay_plugin: PluginBuild, tmp_path: Path
) -> None:
    relay = f"[127.0.0.1]:{_closed_port()}"
    data = message("box", 1, "jane@example.com", "friend@remote.test")
    with PostfixBox(ensure_engine(), relay_plugin, tmp_path) as box:
        assert box.plugin_dir.endswith("/sasl2")
        box.configure(f"relayhost = {relay}\n", "", {str(tmp_path / "t"): "a b\n"})
        assert box.postconf("relayhost", "mydestination") == {
            "relayhost": relay, "mydestination": ""}
        assert (tmp_path / "t.db").is_file()
        box.sendmail(data, "jane@example.com", ["friend@remote.test"])
        box.wait("the mail to be deferred",
                 lambda: any(q.queue == "deferred" for q in box.queue()))
        (queued,) = box.queue()
        assert queued.sender == "jane@example.com"
        assert "Connection refused" in " ".join(queued.reasons)
        assert f"{queued.queue_id}: to=<friend@remote.test>" in box.log()
        # -oi: the lone "." line of the message did not end it early
        body = box.run(["postcat", "-bq", queued.queue_id])
        assert "\n.\n" in body and body.rstrip().endswith("last line")
        pid = box.master_pid()
        box.configure(f"relayhost = {relay}\n")  # a reconfiguration empties the queue
        assert box.queue() == [] and box.master_pid() == pid
