"""`fetchmail-oauth2`: obtain and refresh OAuth2 tokens for fetchmail's passwordfile and postfix."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tokens import __version__, examples, sasl
from tokens.config import KEYS, Config, load_config
from tokens.errors import EXIT_CODES_HELP, ConfigError, TokenError
from tokens.refresh import ensure_fresh
from tokens.state import load_state
from tokens.totp import ALGORITHMS, decode_secret, totp

DEFAULT_CONFIG = "~/.fetchmail-oauth2.conf"
CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports when a pipe's reader has gone
Command = Callable[[argparse.Namespace], int]


class Ui:
    """Informational output goes to stderr (silenced by --quiet); stdout is for requested data."""

    quiet = False

    @classmethod
    def info(cls, message: str) -> None:
        if not cls.quiet:
            print(message, file=sys.stderr, flush=True)


def _config_paths(args: argparse.Namespace) -> list[Path]:
    raw = args.config or [os.environ.get("FETCHMAIL_OAUTH2_CONFIG", DEFAULT_CONFIG)]
    return [Path(os.path.expanduser(p)) for p in raw]


def _one_config(args: argparse.Namespace) -> Config:
    paths = _config_paths(args)
    if len(paths) != 1:
        raise ConfigError(f"`{args.command}` takes exactly one -c CONFIG (got {len(paths)})")
    return load_config(paths[0])


def cmd_authorize(args: argparse.Namespace) -> int:
    from tokens.flows import authorize

    cfg = _one_config(args)
    state = authorize(
        cfg,
        args.flow,
        out=sys.stderr,
        browser=not args.no_browser,
        timeout=args.timeout,
    )
    Ui.info(f"authorised: refresh token in {cfg.refresh_token_file}; {state.describe()}")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    cfg = _one_config(args)
    outcome = ensure_fresh(cfg, force=args.force)
    verb = "refreshed" if outcome.changed else "still fresh"
    Ui.info(f"access token {verb} ({outcome.state.describe()}): {cfg.access_token_file}")
    if args.print:
        print(outcome.token)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    if not args.print:
        raise ConfigError("refusing to print a token without --print (it is a secret)")
    cfg = _one_config(args)
    print(ensure_fresh(cfg).token)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    for path in _config_paths(args):
        cfg = load_config(path)
        print(f"{path}: {load_state(cfg).describe()}")
    return 0


def cmd_sasl(args: argparse.Namespace) -> int:
    cfg = _one_config(args)
    user = args.user or cfg.user
    if not user:
        raise ConfigError(f"no user: pass --user or set user= in {cfg.path}")
    token = ensure_fresh(cfg).token if args.show_token else "<token>"
    raw = sasl.sasl_string(args.mechanism, user, token, args.host or "", args.port or 0)
    print(f"raw:    {sasl.printable(raw)}")
    if args.show_token:
        print(f"base64: {sasl.encode(raw)}")
    else:
        print("base64: (withheld: it contains the token; add --show-token)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _one_config(args)
    user = args.user or cfg.user
    if not user:
        raise ConfigError(f"no user: pass --user or set user= in {cfg.path}")
    from tokens.check import check

    url = args.url or (f"imaps://{cfg.imap_server}" if cfg.imap_server else None)
    if url is None:
        raise ConfigError(f"give a URL such as imaps://host, or set imap_server= in {cfg.path}")
    token = ensure_fresh(cfg).token
    result = check(
        url,
        user,
        token,
        mechanism=args.mechanism,
        ca_file=args.ca_file,
        plain=args.plain,
        timeout=args.timeout,
    )
    Ui.info(f"{args.mechanism.upper()} authentication as {user} succeeded: {result}")
    return 0


def cmd_postfix(args: argparse.Namespace) -> int:
    from tokens.postfix import build_map

    configs = [load_config(p) for p in _config_paths(args)]
    result = build_map(
        configs,
        args.map,
        postmap=args.postmap,
        db_type=args.type,
        config_dir=args.postfix_config_dir,
        force=args.force,
    )
    state = "rebuilt" if result.rebuilt else "unchanged"
    Ui.info(f"{args.map}: {result.entries} entr{'y' if result.entries == 1 else 'ies'}, {state}")
    for failure in result.failures:
        print(f"fetchmail-oauth2: warning: {failure}", file=sys.stderr)
    return max((f.exit_code for f in result.failures), default=0)


def cmd_totp(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        print("TOTP secret (not echoed):", file=sys.stderr, flush=True)
        import getpass

        text = getpass.getpass("")
    else:
        text = sys.stdin.readline()
    try:
        key = decode_secret(text, args.encoding)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    at = args.time if args.time is not None else None
    print(totp(key, at, digits=args.digits, period=args.period, algorithm=args.algorithm))
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    default = "%h/.fetchmail-oauth2.conf" if args.kind == "systemd" else DEFAULT_CONFIG
    config = args.config[0] if args.config else default
    print(examples.render(args.kind, config=config), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fetchmail-oauth2",
        description=__doc__,
        epilog=EXIT_CODES_HELP
        + "\nconfig keys (key=value lines, # comments):\n"
        + "\n".join(f"  {k:<19} {v}" for k, v in KEYS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        action="append",
        metavar="FILE",
        help=f"account config (default $FETCHMAIL_OAUTH2_CONFIG or {DEFAULT_CONFIG}); "
        "repeat for `postfix`",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors (for cron)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(_run=func)
        return cmd

    p = add("authorize", cmd_authorize, "obtain the first refresh token")
    p.add_argument(
        "--flow",
        choices=("loopback", "manual", "device"),
        default="loopback",
        help="loopback: browser redirects to a local listener (default); manual: "
        "paste the redirected URL (headless); device: RFC 8628 user code",
    )
    p.add_argument("--no-browser", action="store_true", help="only print the URL")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (loopback)")

    p = add("refresh", cmd_refresh, "refresh the access token if it is old or about to expire")
    p.add_argument("--force", action="store_true", help="refresh even if still fresh")
    p.add_argument("--print", action="store_true", help="also print the token to stdout")

    p = add("token", cmd_token, "print a fresh access token (needs --print)")
    p.add_argument("--print", action="store_true", help="yes, print the token to stdout")

    add("status", cmd_status, "show the token state (empty/pending/active/expired/revoked)")

    p = add("sasl", cmd_sasl, "show the XOAUTH2/OAUTHBEARER SASL string")
    p.add_argument("--mechanism", choices=sasl.MECHANISMS, default="xoauth2")
    p.add_argument("--user", help="SASL user (default: user= from the config)")
    p.add_argument("--host", help="OAUTHBEARER host= field")
    p.add_argument("--port", type=int, help="OAUTHBEARER port= field")
    p.add_argument("--show-token", action="store_true", help="include the real token + base64")

    p = add("check", cmd_check, "test authentication against a mail server")
    p.add_argument(
        "url",
        nargs="?",
        help="SCHEME://host[:port]; SCHEME: imap(s), pop3(s), smtp(s), submission",
    )
    p.add_argument("--mechanism", choices=sasl.MECHANISMS, default="xoauth2")
    p.add_argument("--user", help="login (default: user= from the config)")
    p.add_argument("--ca-file", type=Path, help="CA bundle to verify the server")
    p.add_argument("--plain", action="store_true", help="no TLS (loopback test servers only)")
    p.add_argument("--timeout", type=float, default=30.0)

    p = add("postfix", cmd_postfix, "build postfix's SASL password map from the -c accounts")
    p.add_argument("--map", type=Path, required=True, help="e.g. /etc/postfix/sasl_passwd")
    p.add_argument("--postmap", default="postmap", help="postmap program (default: postmap)")
    p.add_argument("--type", help="map type for postmap (hash, lmdb, cdb, ...)")
    p.add_argument("--postfix-config-dir", type=Path, help="passed as postmap -c DIR")
    p.add_argument("--force", action="store_true", help="run postmap even if unchanged")

    p = add("totp", cmd_totp, "print an RFC 6238 TOTP code; the secret is read from stdin")
    p.add_argument("--digits", type=int, default=6)
    p.add_argument("--period", type=int, default=30)
    p.add_argument("--algorithm", choices=ALGORITHMS, default="sha1")
    p.add_argument("--encoding", choices=("base32", "hex", "ascii"), default="base32")
    p.add_argument("--time", type=float, help="unix time to compute the code for")

    p = add("example", cmd_example, "print example systemd units, cron lines, fetchmailrc")
    p.add_argument("kind", choices=sorted(examples.EXAMPLES))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            code = _dispatch(argv)
        finally:  # also after argparse's --help: a reader gone shows up here, not at exit
            sys.stdout.flush()
        return code
    except BrokenPipeError:  # `| head`: end quietly, as a program killed by SIGPIPE does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # or Python complains flushing it at exit
        os.close(devnull)
        return CLOSED_PIPE


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    Ui.quiet = args.quiet
    try:
        return int(args._run(args))
    except TokenError as exc:
        print(f"fetchmail-oauth2: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fetchmail-oauth2: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # not a file we failed to write: see main()
    except OSError as exc:  # e.g. a token directory we may not write to
        print(f"fetchmail-oauth2: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
