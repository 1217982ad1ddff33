"""The same tokens against Debian's dovecot 2.3 and the mock: the same outcome, byte for byte.

dovecot validates over RFC 7662 at the same mock provider (passdb oauth2, introspection_mode
= post); the mock runs the "dovecot" profile with an IntrospectionValidator.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from harness.mockserver import IntrospectionValidator, Mailbox, MailServerController
from harness.mockserver.dovecot import DovecotInstance, dovecot_binary
from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.mailclients import USER, Raw, b64, oauthbearer, xoauth2
from tests.helpers.skips import skip_loudly

STAMP = re.compile(rb" \[[^\]]*:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]$")
CAPS = re.compile(rb"^a OK \[CAPABILITY [^\]]*\] ")


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[MockOAuthProvider, dict[str, dict[str, int]]]]:
    """(provider, {"dovecot": {"imap": port, "pop3": port}, "mock": {...}})."""
    if dovecot_binary() is None:
        skip_loudly("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
    if os.geteuid() != 0:
        skip_loudly("the private dovecot instance needs root (it drops to nobody for mail)")
    messages = [m.data for m in Mailbox.generate(3).snapshot()]
    with MockOAuthProvider() as provider:
        cid, secret = provider.resource_credentials
        validator = IntrospectionValidator(
            provider.introspection_url, cid, secret, required_scope="mail"
        )
        with DovecotInstance(provider.introspection_url, cid, secret, USER, messages) as dc:
            servers = [
                MailServerController(p, validator=validator, mailbox=Mailbox(messages)).start()
                for p in ("imap", "pop3")
            ]
            try:
                yield (
                    provider,
                    {
                        "dovecot": {"imap": dc.imap_port, "pop3": dc.pop3_port},
                        "mock": {"imap": servers[0].port, "pop3": servers[1].port},
                    },
                )
            finally:
                for s in servers:
                    s.stop()


def converse(port: int, protocol: str, mech: str, payload: bytes, ir: bool) -> list[bytes]:
    """Authenticate like a well-behaved client; return the server's lines (normalised)."""
    raw = Raw(port)
    said = [raw.greeting] if protocol == "pop3" else []
    command = f"a AUTHENTICATE {mech}" if protocol == "imap" else f"AUTH {mech}"
    reply = raw.ask(f"{command} {b64(payload)}" if ir else command)
    if not ir and reply.rstrip() == b"+":
        said.append(reply)
        reply = raw.ask(b64(payload))
    if reply.startswith(b"+ "):  # the error challenge: answer it as RFC 7628 / Google say
        said.append(reply)
        reply = raw.ask("" if mech == "XOAUTH2" else "AQ==")
    said.append(CAPS.sub(b"a OK ", STAMP.sub(b"", reply)))
    raw.close()
    return said


CASES = ["good", "bad", "expired", "other-user", "wrong-scope", "unavailable"]


@pytest.mark.parametrize("ir", [True, False], ids=["sasl-ir", "no-ir"])
@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("case", CASES)
def test_same_outcome_as_dovecot(
    pair: tuple[MockOAuthProvider, dict[str, dict[str, int]]],
    case: str,
    protocol: str,
    mech: str,
    ir: bool,
) -> None:
    provider, ports = pair
    user = "bob@example.com" if case == "other-user" else USER
    grant = provider.mint_token(user, scope="openid" if case == "wrong-scope" else "mail")
    token = "not-a-token" if case == "bad" else grant["access_token"]
    if case == "expired":
        provider.expire(token)
    encode = xoauth2 if mech == "XOAUTH2" else oauthbearer
    payload = encode(USER, token)
    answers = {}
    for name in ("dovecot", "mock"):
        if case == "unavailable":
            provider.inject("introspect", "status", status=503, count=1)
        answers[name] = converse(ports[name][protocol], protocol, mech, payload, ir)
    provider.clear_faults()
    assert answers["mock"] == answers["dovecot"]
    last = answers["mock"][-1]
    if case == "good":
        assert last.startswith((b"a OK", b"+OK"))
    else:
        assert last.startswith((b"a NO", b"-ERR"))
        challenged = any(line.startswith(b"+ eyJ") for line in answers["mock"])
        assert challenged == (case != "unavailable")
