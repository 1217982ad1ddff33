"""`fetchmail-harness serve`: mock OAuth2 provider + mock IMAP/POP3 servers for trying a build."""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

from harness.errors import ConfigError
from harness.mockserver.controller import MailServerController
from harness.mockserver.faults import Faults
from harness.mockserver.mailbox import Mailbox
from harness.mockserver.oauth_provider import MockOAuthProvider
from harness.mockserver.profiles import PROFILES
from harness.mockserver.tls import TestCA
from harness.mockserver.validators import IntrospectionValidator

NAME = "serve"
HELP = "run a mock OAuth2 provider and mock IMAP/POP3 servers until Ctrl-C"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=("imap", "pop3", "both"), default="both")
    parser.add_argument("--imap-port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--pop3-port", type=int, default=0, help="0 = any free port")
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
    parser.add_argument(
        "--faults",
        default="",
        help="comma-separated: delay=SECONDS, disconnect-mid-fetch, malformed, overlong=BYTES, "
        "bad-base64, endless-continuations, early-disconnect, disconnect-after=N",
    )
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
    protocols = ("imap", "pop3") if args.protocol == "both" else (args.protocol,)
    with ExitStack() as stack:
        provider = stack.enter_context(MockOAuthProvider())
        grant = provider.mint_token(args.user, scope=args.scope)
        token_file = workdir / "token"
        token_file.write_text(grant["access_token"] + "\n")
        os.chmod(token_file, 0o600)
        ca = TestCA(workdir / "ca") if args.tls != "plain" else None
        validator = IntrospectionValidator(
            provider.introspection_url, *provider.resource_credentials, required_scope=args.scope
        )
        passwords = {args.user: args.password} if args.password else {}
        print(f"OAuth2 provider: {provider.url}  (introspection {provider.introspection_url})")
        print(f"user: {args.user}   token file: {token_file}")
        print(f"refresh token: {grant.get('refresh_token')}")
        if ca:
            print(f"CA certificate (sslcertfile / --cacert): {ca.ca_path}")
        print(f"mailbox: {len(mailbox)} messages   faults: {faults}")
        for protocol in protocols:
            server = stack.enter_context(
                MailServerController(
                    protocol,
                    port=args.imap_port if protocol == "imap" else args.pop3_port,
                    tls=args.tls,
                    ca=ca,
                    validator=validator,
                    mailbox=mailbox,
                    profile=args.profile,
                    passwords=passwords,
                    faults=faults,
                    allow_login=bool(passwords),
                    transcript_path=args.transcript,
                )
            )
            print(
                f"\n{protocol.upper()} ({args.tls}, profile {args.profile}): "
                f"127.0.0.1:{server.port}"
            )
            print("example .fetchmailrc:")
            print(example_rc(args, protocol, server.port, ca.ca_path if ca else None, token_file))
        print("\nserving; Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopping")
    return 0
