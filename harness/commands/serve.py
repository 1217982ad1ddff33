"""`fetchmail-harness serve`: mock OAuth2 provider + mock IMAP/POP3/SMTP submission servers for
trying a build by hand."""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.mockserver.controller import DEFAULT_IDLE_TIMEOUT
from harness.mockserver.faults import Faults
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.oauth_provider import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from harness.mockserver.profiles import PROFILES
from harness.mockserver.stack import MockStack

NAME = "serve"
HELP = "run a mock OAuth2 provider and mock IMAP/POP3/SMTP servers until Ctrl-C"
PROTOCOLS = {"imap": ("imap",), "pop3": ("pop3",), "smtp": ("smtp",), "both": ("imap", "pop3"),
             "all": ("imap", "pop3", "smtp")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="all",
                        help="both = imap and pop3; all = those and SMTP submission")
    parser.add_argument("--imap-port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--pop3-port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--smtp-port", type=int, default=0, help="0 = any free port")
    parser.add_argument(
        "--tls", choices=("implicit", "starttls", "plain"), default="starttls", help="TLS mode"
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="dovecot")
    parser.add_argument("--user", default="user@example.com")
    parser.add_argument("--password", default=None, help="also allow LOGIN/USER+PASS with this")
    parser.add_argument("--scope", default="mail", help="scope the token needs")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--mailbox", type=Path, help="maildir, mbox, or dir of message files")
    source.add_argument("--generate", type=int, default=10, metavar="N", help="N messages")
    parser.add_argument("--size", type=int, default=2048, help="size of generated messages")
    names = ", ".join(f.name.replace("_", "-") for f in fields(Faults))
    parser.add_argument("--faults", default="", help=f"comma-separated, of: {names} "
                        "(delay=SECONDS, overlong=BYTES, disconnect-after=N)")
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT,
                        help="seconds before a silent client is dropped (0 = never)")
    parser.add_argument("--workdir", type=Path, help="where CA, token file, rc go (default: temp)")
    parser.add_argument("--transcript", type=Path, help="append session transcripts here")


def example_rc(
    args: argparse.Namespace, protocol: str, port: int, ca: Path | None, token_file: Path
) -> str:
    tls = {"implicit": "ssl sslcertck", "starttls": "sslproto tls1.2+ sslcertck", "plain": ""}
    lines = [
        # fetchmail matches the certificate against DNS names only, never an IP address
        f"poll localhost service {port} protocol {protocol.upper()} auth oauthbearer",
        f'    user "{args.user}" passwordfile "{token_file}"',
        f"    {tls[args.tls]}" + (f' sslcertfile "{ca}"' if ca else ""),
        '    keep mda "cat >/dev/null"',
    ]
    return "\n".join(line for line in lines if line.strip())


def example_smtp(args: argparse.Namespace, port: int, ca: Path | None, token_file: Path) -> str:
    scheme = "smtps" if args.tls == "implicit" else "smtp"
    tls = (f" --ssl-reqd --cacert {ca}" if ca else "")
    return (f"curl {scheme}://localhost:{port}{tls} --oauth2-bearer \"$(cat {token_file})\" "
            f"--user '{args.user}:' --mail-from {args.user} --mail-rcpt someone@example.org "
            "--upload-file message.eml")


def write_account_config(args: argparse.Namespace, stack: MockStack, grant: dict[str, Any],
                         workdir: Path) -> Path:
    """A `fetchmail-oauth2` config for the served user, whose grant the mock provider minted:
    what a user's config for a real provider holds, so the refresher (and postfix's map job,
    when SMTP is served) can be tried against the mock. Files 0600."""
    refresh = workdir / "refresh_token"
    refresh.write_text(grant["refresh_token"] + "\n")
    refresh.chmod(0o600)
    lines = [
        f"client_id = {DEFAULT_CLIENT_ID}",
        f"client_secret = {DEFAULT_CLIENT_SECRET}",
        f"auth_url = {stack.provider.authorize_url}",
        f"token_url = {stack.provider.token_url}",
        f"scope = {args.scope}",
        f"user = {args.user}",
        f"refresh_token_file = {refresh}",
        f"access_token_file = {workdir / 'token'}",
    ]
    if "smtp" in stack.servers:  # postfix relays to the mock submission server
        lines += [f"postfix_relay = [127.0.0.1]:{stack['smtp'].port}",
                  f"postfix_key = {args.user}"]
    config = workdir / "oauth2.conf"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)
    return config


def run(args: argparse.Namespace) -> int:
    faults = Faults.parse(args.faults)
    if args.mailbox is not None:
        mailbox = Mailbox.from_path(args.mailbox)
    else:
        if args.generate < 0:
            raise ConfigError("--generate needs N >= 0")
        mailbox = Mailbox.generate(args.generate, args.size)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fmh-serve-"))
    workdir.mkdir(parents=True, exist_ok=True)
    passwords = {args.user: args.password} if args.password else {}
    stack = MockStack(
        PROTOCOLS[args.protocol],
        tls=args.tls,
        ports={"imap": args.imap_port, "pop3": args.pop3_port, "smtp": args.smtp_port},
        profile=args.profile,
        faults=faults,
        mailbox=mailbox,
        user=args.user,
        scope=args.scope,
        ca_dir=workdir / "ca",
        transcript_path=args.transcript,
        passwords=passwords,
        allow_login=bool(passwords),
        idle_timeout=args.idle_timeout,
    )
    with stack:
        provider = stack.provider
        grant = stack.mint_token()
        token_file = workdir / "token"
        token_file.write_text(grant["access_token"] + "\n")
        os.chmod(token_file, 0o600)
        print(f"OAuth2 provider: {provider.url}  (introspection {provider.introspection_url})")
        print(f"user: {args.user}   token file: {token_file}")
        print(f"refresh token: {grant.get('refresh_token')}")
        config = write_account_config(args, stack, grant, workdir)
        print(f"fetchmail-oauth2 config (-c): {config}")
        if stack.ca_path:
            print(f"CA certificate (sslcertfile / --cacert): {stack.ca_path}")
        print(f"mailbox: {len(mailbox)} messages   faults: {faults}")
        for protocol, server in stack.servers.items():
            name = "SMTP submission" if protocol == "smtp" else protocol.upper()
            print(f"\n{name} ({args.tls}, profile {args.profile}): 127.0.0.1:{server.port}")
            if protocol == "smtp":
                print("try it:")
                print(example_smtp(args, server.port, stack.ca_path, token_file))
            else:
                print("example .fetchmailrc:")
                print(example_rc(args, protocol, server.port, stack.ca_path, token_file))
        print("\nserving; Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopping")
        if stack.outbox.snapshot():
            print(f"SMTP accepted {len(stack.outbox)} message(s)")
    return 0
