"""Benchmark (not a test): a Python client fetching N messages from the mock vs a private dovecot.

    python -m harness.maint.mockbench --messages 5000 --size 2048 --rounds 3 [--batch N]
    python -m harness.maint.mockbench --protocol pop3 --messages 5000

It says whether the mock server could be the slow part of a cell (a ratio well above 1
would mean the matrix waits on it), and checks every byte fetched from both.

Both servers hold the same messages and validate the same XOAUTH2 token at the same mock
provider; the client is the same (imaplib / poplib, plain TCP on both) and runs in its own
process, as fetchmail would, so it never shares the mock's interpreter (`--client-in-process`
measures that case too). Rounds alternate (after one warm-up each) and the report is the
ratio of the medians measured side by side in this one run. Needs root and Debian's
dovecot-imapd and dovecot-pop3d.
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import poplib
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import cache

from harness.mockserver.dovecot import DovecotInstance, dovecot_binary
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.stack import MockStack

USER = "bench@example.com"


def xoauth2(token: str) -> bytes:
    return f"user={USER}\x01auth=Bearer {token}\x01\x01".encode()


def fetch_imap(port: int, token: str, batch: int) -> tuple[float, list[bytes]]:
    """Seconds to log in and fetch every message with `batch` messages per FETCH."""
    start = time.perf_counter()
    client = imaplib.IMAP4("127.0.0.1", port)
    client.authenticate("XOAUTH2", lambda _: xoauth2(token))
    _, selected = client.select("INBOX", readonly=True)
    count = int(selected[0] or 0)
    got: list[bytes] = []
    for first in range(1, count + 1, batch):
        last = min(first + batch - 1, count)
        _, data = client.fetch(f"{first}:{last}", "(BODY.PEEK[])")
        got.extend(bytes(item[1]) for item in data if isinstance(item, tuple))
    client.logout()
    return time.perf_counter() - start, got


def fetch_pop3(port: int, token: str) -> tuple[float, list[bytes]]:
    """Seconds to log in and RETR every message (one command each, as fetchmail does)."""
    start = time.perf_counter()
    client = poplib.POP3("127.0.0.1", port)
    auth = "AUTH XOAUTH2 " + base64.b64encode(xoauth2(token)).decode()
    client._shortcmd(auth)  # type: ignore[attr-defined]  # poplib has no AUTH method
    count, _ = client.stat()
    got: list[bytes] = []
    for number in range(1, count + 1):
        _, lines, _ = client.retr(number)
        got.append(b"".join(line + b"\r\n" for line in lines))
    client.quit()
    return time.perf_counter() - start, got


@cache  # generated once per process, not once per timed round
def expected_messages(count: int, size: int) -> tuple[bytes, ...]:
    return tuple(m.data for m in Mailbox.generate(count, size).snapshot())


def fetch_all(args: argparse.Namespace, port: int, token: str) -> float:
    """One timed run of the client in this process; checks every byte it fetched."""
    if args.protocol == "imap":
        elapsed, got = fetch_imap(port, token, args.batch)
    else:
        elapsed, got = fetch_pop3(port, token)
    if tuple(got) != expected_messages(args.messages, args.size):
        raise SystemExit(f"fetched messages differ from the seeded ones on port {port}")
    return elapsed


def fetch_in_child(args: argparse.Namespace, port: int, token: str) -> float:
    """One timed run of the same client in a fresh process (start-up is not timed)."""
    command = [sys.executable, "-m", "harness.maint.mockbench", "--client", str(port)]
    command += ["--protocol", args.protocol, "--messages", str(args.messages)]
    command += ["--size", str(args.size), "--batch", str(args.batch)]
    done = subprocess.run(command, input=token, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark client failed on port {port}:\n{done.stderr}")
    return float(done.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--protocol", choices=("imap", "pop3"), default="imap")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batch", type=int, default=1, help="IMAP messages per FETCH (1 = like fetchmail)"
    )
    parser.add_argument(
        "--client-in-process",
        action="store_true",
        help="run the client in this process (it then shares the mock's interpreter lock)",
    )
    parser.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client is not None:  # child: token on stdin, seconds on stdout
        print(fetch_all(args, args.client, sys.stdin.read().strip()))
        return 0
    if dovecot_binary() is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 2
    fetch = fetch_all if args.client_in_process else fetch_in_child
    messages = expected_messages(args.messages, args.size)
    with MockStack((args.protocol,), tls="plain", user=USER, mailbox=Mailbox(messages)) as mock:
        provider = mock.provider
        cid, secret = provider.resource_credentials
        token = mock.mint_token()["access_token"]
        with DovecotInstance(provider.introspection_url, cid, secret, USER, messages) as dovecot:
            dovecot_port = dovecot.imap_port if args.protocol == "imap" else dovecot.pop3_port
            ports = {"mock": mock[args.protocol].port, "dovecot": dovecot_port}
            for port in ports.values():  # warm-up: dovecot builds its index here
                fetch(args, port, token)
            times: dict[str, list[float]] = {name: [] for name in ports}
            for _ in range(args.rounds):
                for name, port in ports.items():
                    times[name].append(fetch(args, port, token))
    med = {name: statistics.median(values) for name, values in times.items()}
    per = f"{args.batch} per FETCH" if args.protocol == "imap" else "one RETR each"
    where = "in this process" if args.client_in_process else "in its own process"
    print(
        f"{args.protocol}: {args.messages} messages of {args.size} bytes, {per}, client "
        f"{where}, {args.rounds} rounds (median seconds):"
    )
    for name, values in times.items():
        print(f"  {name:8s} {med[name]:.3f}  ({', '.join(f'{v:.3f}' for v in values)})")
    print(f"ratio mock/dovecot = {med['mock'] / med['dovecot']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
