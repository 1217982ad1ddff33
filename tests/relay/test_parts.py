"""Relay cell parts without a container: the mail and its byte-exact rule, the example's
sections."""

from __future__ import annotations

from harness.relay.mail import difference, message, message_id
from harness.relay.setup import parse_sections

RECEIVED = (b"Received: by relay.test (Postfix, from userid 0)\r\n"
            b"\tid 3F2E7268883; Tue,  1 Dec 2026 11:05:49 +0000 (UTC)\r\n")


def _relayed(data: bytes, head: bytes = RECEIVED) -> bytes:
    return head + data.replace(b"\n", b"\r\n")


def test_the_message_exercises_transparency_and_names_itself() -> None:
    data = message("relay-bookworm-sendmail", 3, "jane@example.com", "friend@remote.test")
    lines = data.split(b"\n")
    assert b"." in lines and any(ln.startswith(b".a line") for ln in lines)
    assert any(ln.endswith(b"   ") for ln in lines) and max(map(len, lines)) >= 900
    assert data.endswith(b"last line\n") and data.isascii()
    assert message_id(data) == "<relay-3.relay-bookworm-sendmail@example.com>"


def test_relayed_unchanged_after_one_received_header() -> None:
    data = message("c", 1, "jane@example.com", "friend@remote.test")
    assert difference(data, _relayed(data), "relay.test") is None


def test_any_other_change_is_a_difference() -> None:
    data = message("c", 1, "jane@example.com", "friend@remote.test")
    relayed = _relayed(data)

    def why(received: bytes) -> str:
        found = difference(data, received, "relay.test")
        assert found is not None, "the change went unnoticed"
        return found

    assert "does not start with" in why(data.replace(b"\n", b"\r\n"))
    assert "not relay.test" in why(relayed.replace(b"by relay.test", b"by other.test"))
    assert "byte 0 differs" in why(RECEIVED + relayed)  # a second Received:
    assert "differs" in why(relayed.replace(b"\r\n.a line", b"\r\n..a line"))  # dot kept
    assert "differs" in why(relayed[:-2] + b"\n")  # a bare LF
    assert "lengths" in why(relayed[:-6])  # truncated


def test_example_sections_are_split_at_their_markers() -> None:
    text = ("# intro\n# --- main.cf ---\nrelayhost = [h]:587\n# a comment\n"
            "# --- tls_policy ---\n[h]:587 encrypt\n# --- relayhost_map ---\n")
    assert parse_sections(text) == {
        "main.cf": ["relayhost = [h]:587", "# a comment"],
        "tls_policy": ["[h]:587 encrypt"],
        "relayhost_map": [],
    }
