"""Benchmark (not a test): imaplib fetching N messages from the mock vs a private dovecot.

    python -m harness.mockserver.bench --messages 5000 --size 2048 --rounds 3

Both servers hold the same messages and validate the same XOAUTH2 token at the same mock
provider; runs alternate (after one warm-up each) and the report is the ratio of the medians
measured side by side in this one run. Needs root and Debian's dovecot-imapd.
"""

from __future__ import annotations

import argparse
import imaplib
import statistics
import sys
import time
from collections.abc import Sequence

from harness.mockserver.controller import MailServerController
from harness.mockserver.dovecot import DovecotInstance, dovecot_binary
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.oauth_provider import MockOAuthProvider
from harness.mockserver.validators import IntrospectionValidator

USER = "bench@example.com"


def fetch_all(port: int, token: str, expected: list[bytes], batch: int) -> float:
    """Seconds to log in and fetch every message; checks the bytes."""
    start = time.perf_counter()
    client = imaplib.IMAP4("127.0.0.1", port)
    client.authenticate("XOAUTH2", lambda _: f"user={USER}\x01auth=Bearer {token}\x01\x01".encode())
    _, selected = client.select("INBOX", readonly=True)
    count = int(selected[0] or 0)
    got: list[bytes] = []
    for first in range(1, count + 1, batch):
        last = min(first + batch - 1, count)
        _, data = client.fetch(f"{first}:{last}", "(BODY.PEEK[])")
        got.extend(bytes(item[1]) for item in data if isinstance(item, tuple))
    client.logout()
    elapsed = time.perf_counter() - start
    if got != expected:
        raise SystemExit(f"fetched messages differ from the seeded ones on port {port}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batch", type=int, default=1, help="messages per FETCH (1 = like fetchmail)"
    )
    args = parser.parse_args(argv)
    if dovecot_binary() is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 2
    messages = [m.data for m in Mailbox.generate(args.messages, args.size).snapshot()]
    with MockOAuthProvider() as provider:
        cid, secret = provider.resource_credentials
        token = provider.mint_token(USER)["access_token"]
        validator = IntrospectionValidator(provider.introspection_url, cid, secret, "mail")
        with (
            DovecotInstance(provider.introspection_url, cid, secret, USER, messages) as dovecot,
            MailServerController("imap", validator=validator, mailbox=Mailbox(messages)) as mock,
        ):
            ports = {"mock": mock.port, "dovecot": dovecot.imap_port}
            for port in ports.values():  # warm-up: dovecot builds its index here
                fetch_all(port, token, messages, args.batch)
            times: dict[str, list[float]] = {name: [] for name in ports}
            for _ in range(args.rounds):
                for name, port in ports.items():
                    times[name].append(fetch_all(port, token, messages, args.batch))
    med = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{args.messages} messages of {args.size} bytes, {args.batch} per FETCH, "
        f"{args.rounds} rounds (median seconds):"
    )
    for name, values in times.items():
        print(f"  {name:8s} {med[name]:.3f}  ({', '.join(f'{v:.3f}' for v in values)})")
    print(f"ratio mock/dovecot = {med['mock'] / med['dovecot']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
