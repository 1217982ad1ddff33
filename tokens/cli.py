"""`fetchmail-oauth2`: obtain and refresh OAuth2 tokens for fetchmail's passwordfile and postfix."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tokens import __version__
from tokens.config import KEYS, Config, check_distinct, load_accounts
from tokens.errors import EXIT_CODES_HELP, ConfigError, TokenError, worst_exit

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

    @staticmethod
    def error(message: str) -> None:
        print(f"fetchmail-oauth2: error: {message}", file=sys.stderr, flush=True)


def _config_paths(args: argparse.Namespace) -> list[Path]:
    raw = args.config or [os.environ.get("FETCHMAIL_OAUTH2_CONFIG", DEFAULT_CONFIG)]
    return [Path(os.path.expanduser(p)) for p in raw]


def _accounts(args: argparse.Namespace) -> list[Config]:
    """Every account of every -c file (only the --account ones, if given)."""
    configs = [cfg for path in _config_paths(args) for cfg in load_accounts(path)]
    if args.account:
        unknown = set(args.account) - {c.account for c in configs}
        if unknown:
            names = ", ".join(sorted(c.account for c in configs if c.account)) or "none"
            raise ConfigError(f"no account section {sorted(unknown)} (sections: {names})")
        configs = [c for c in configs if c.account in args.account]
    check_distinct(configs)
    return configs


def _one_account(args: argparse.Namespace) -> Config:
    configs = _accounts(args)
    if len(configs) != 1:
        names = ", ".join(c.name for c in configs)
        raise ConfigError(
            f"`{args.command}` works on one account, these configs hold {len(configs)} "
            f"({names}): give one -c, or --account NAME"
        )
    return configs[0]


def _each(configs: list[Config], run: Callable[[Config], None]) -> int:
    """Run `run` for every account; errors are reported per account (exit: errors.worst_exit)."""
    if len(configs) == 1:
        run(configs[0])
        return 0
    codes = []
    for cfg in configs:
        try:
            run(cfg)
            codes.append(0)
        except TokenError as exc:
            Ui.error(f"{cfg.name}: {exc}")
            codes.append(exc.exit_code)
    return worst_exit(codes)


def cmd_authorize(args: argparse.Namespace) -> int:
    from tokens.flows import authorize

    cfg = _one_account(args)
    state = authorize(
        cfg, args.flow, out=sys.stderr, browser=not args.no_browser, timeout=args.timeout
    )
    Ui.info(f"authorised: refresh token in {cfg.refresh_source}; {state.describe()}")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from tokens.refresh import ensure_fresh

    def run(cfg: Config) -> None:
        outcome = ensure_fresh(cfg, force=args.force)
        verb = "refreshed" if outcome.changed else "still fresh"
        Ui.info(f"{cfg.name}: access token {verb} ({outcome.state.describe()})")
        if args.print:
            print(outcome.token)

    return _each(_accounts(args), run)


def cmd_token(args: argparse.Namespace) -> int:
    from tokens.refresh import ensure_fresh

    if not args.print:
        raise ConfigError("refusing to print a token without --print (it is a secret)")
    print(ensure_fresh(_one_account(args)).token)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from tokens.state import load_state

    def run(cfg: Config) -> None:
        print(f"{cfg.name}: {load_state(cfg).describe()}")

    return _each(_accounts(args), run)


def _user(args: argparse.Namespace, cfg: Config) -> str:
    user: str | None = args.user or cfg.user
    if not user:
        raise ConfigError(f"no user: pass --user or set user= in {cfg.path}")
    return user


def cmd_sasl(args: argparse.Namespace) -> int:
    from tokens import sasl
    from tokens.refresh import ensure_fresh

    cfg = _one_account(args)
    user = _user(args, cfg)
    token = ensure_fresh(cfg).token if args.show_token else "<token>"
    raw = sasl.sasl_string(args.mechanism, user, token, args.host or "", args.port or 0)
    print(f"raw:    {sasl.printable(raw)}")
    if args.show_token:
        print(f"base64: {sasl.encode(raw)}")
    else:
        print("base64: (withheld: it contains the token; add --show-token)")
    return 0


def check_targets(cfg: Config, url: str | None) -> list[str]:
    """The URL given, else imaps://imap_server and submission://smtp_server of the config."""
    if url:
        return [url]
    targets = [f"imaps://{cfg.imap_server}"] if cfg.imap_server else []
    targets += [f"submission://{cfg.smtp_server}"] if cfg.smtp_server else []
    if not targets:
        raise ConfigError(
            f"give a URL such as imaps://host, or set imap_server= / smtp_server= in {cfg.path}"
        )
    return targets


def cmd_check(args: argparse.Namespace) -> int:
    from tokens.check import check
    from tokens.refresh import ensure_fresh

    cfg = _one_account(args)
    user = _user(args, cfg)
    targets = check_targets(cfg, args.url)
    token = ensure_fresh(cfg).token
    failed: list[TokenError] = []
    for url in targets:
        try:
            result = check(
                url,
                user,
                token,
                mechanism=args.mechanism,
                ca_file=args.ca_file,
                plain=args.plain,
                timeout=args.timeout,
            )
        except TokenError as exc:
            if len(targets) == 1:
                raise
            Ui.error(f"{url}: {exc}")
            failed.append(exc)
            continue
        Ui.info(f"{url}: {args.mechanism.upper()} authentication as {user} succeeded: {result}")
    return failed[0].exit_code if failed else 0


def cmd_postfix(args: argparse.Namespace) -> int:
    from tokens.postfix import build_map

    result = build_map(
        _accounts(args),
        args.map,
        postmap=args.postmap,
        db_type=args.type,
        config_dir=args.postfix_config_dir,
        force=args.force,
    )
    state = "rebuilt" if result.rebuilt else "unchanged"
    Ui.info(f"{args.map}: {result.entries} entr{'y' if result.entries == 1 else 'ies'}, {state}")
    for name in result.skipped:
        Ui.info(f"{name}: refreshed; not in the map (no postfix_relay or postfix_key)")
    for failure in result.failures:
        Ui.error(str(failure))
    return worst_exit([f.exit_code for f in result.failures])


def cmd_totp(args: argparse.Namespace) -> int:
    from tokens.totp import decode_secret, totp

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
    print(totp(key, args.time, digits=args.digits, period=args.period, algorithm=args.algorithm))
    return 0


def running_cli() -> list[str]:
    """The absolute command that runs this CLI (the console script, or python -m)."""
    import shutil

    script = os.path.abspath(sys.argv[0])
    if os.path.basename(script) == "fetchmail-oauth2" and os.access(script, os.X_OK):
        return [script]
    found = shutil.which("fetchmail-oauth2")
    if found and Path(found).resolve().parent == Path(sys.executable).resolve().parent:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "tokens.cli"]


def cmd_example(args: argparse.Namespace) -> int:
    import shutil

    from tokens import examples

    given = bool(args.config)
    paths = _config_paths(args)
    configs = _accounts(args) if given or args.kind == "postfix" else []
    job = examples.Job(
        exe=running_cli(),
        configs=[str(p.resolve()) for p in paths],
        postfix_map=str(args.postfix_map) if args.postfix_map else None,
        db_type=args.type or "hash",
    )
    fetchmail = args.fetchmail or shutil.which("fetchmail") or "/usr/local/bin/fetchmail"
    if args.kind == "fetchmailrc":
        text = examples.fetchmailrc(configs)
    elif args.kind == "systemd":
        text = examples.systemd(job, fetchmail)
    elif args.kind == "cron":
        text = examples.cron(job, fetchmail)
    else:
        postfix_dir = args.postfix_dir or (
            args.postfix_map.parent if args.postfix_map else Path("/etc/postfix")
        )
        if job.postfix_map is None:
            job = examples.Job(job.exe, job.configs, str(postfix_dir / "sasl_passwd"), job.db_type)
        text = examples.postfix(configs, job, postfix_dir, args.section)
    print(text, end="")
    return 0


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """A fixed width: argparse would import shutil and ask the terminal at every add_argument
    (3 ms of every cron run)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=100)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fetchmail-oauth2",
        description=__doc__,
        epilog=EXIT_CODES_HELP
        + "\nconfig keys (`key = value` lines; `#` after whitespace starts a comment; a value "
        'with " #" in it goes in double quotes; `[name]` starts an account section):\n'
        + "\n".join(f"  {k:<19} {v}" for k, v in KEYS.items())
        + "\n\nThe classic fetchmail-oauth2.py's -c FILE --obtain_refresh_token_file, --refresh "
        "and --auto_refresh work as authorize, refresh --force and refresh.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        action="append",
        metavar="FILE",
        help=f"account config (default $FETCHMAIL_OAUTH2_CONFIG or {DEFAULT_CONFIG}); "
        "repeat for several accounts",
    )
    parser.add_argument(
        "-a",
        "--account",
        action="append",
        metavar="NAME",
        help="only the [NAME] section(s) of the configs",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors (for cron)")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, prog="fetchmail-oauth2"
    )

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=_Formatter
        )
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

    p = add("refresh", cmd_refresh, "refresh every account's token if it is old or expiring")
    p.add_argument("--force", action="store_true", help="refresh even if still fresh")
    p.add_argument("--print", action="store_true", help="also print the token(s) to stdout")

    p = add("token", cmd_token, "print a fresh access token (needs --print)")
    p.add_argument("--print", action="store_true", help="yes, print the token to stdout")

    add("status", cmd_status, "show each account's token state (see exit codes below)")

    p = add("sasl", cmd_sasl, "show the XOAUTH2/OAUTHBEARER SASL string")
    p.add_argument("--mechanism", choices=("xoauth2", "oauthbearer"), default="xoauth2")
    p.add_argument("--user", help="SASL user (default: user= from the config)")
    p.add_argument("--host", help="OAUTHBEARER host= field")
    p.add_argument("--port", type=int, help="OAUTHBEARER port= field")
    p.add_argument("--show-token", action="store_true", help="include the real token + base64")

    p = add("check", cmd_check, "log in to a mail server with the token, then list")
    p.add_argument(
        "url",
        nargs="?",
        help="SCHEME://host[:port]; SCHEME: imap(s), pop3(s), smtp(s), submission "
        "(default: imap_server and smtp_server of the config)",
    )
    p.add_argument("--mechanism", choices=("xoauth2", "oauthbearer"), default="xoauth2")
    p.add_argument("--user", help="login (default: user= from the config)")
    p.add_argument("--ca-file", type=Path, help="CA bundle to verify the server")
    p.add_argument("--plain", action="store_true", help="no TLS (loopback test servers only)")
    p.add_argument("--timeout", type=float, default=30.0)

    p = add(
        "postfix",
        cmd_postfix,
        "refresh every account and rebuild postfix's SASL map from those with "
        "postfix_relay/postfix_key (the one job for fetchmail and postfix)",
    )
    p.add_argument("--map", type=Path, required=True, help="e.g. /etc/postfix/sasl_passwd")
    p.add_argument("--postmap", default="postmap", help="postmap program (default: postmap)")
    p.add_argument("--type", help="map type for postmap (hash, lmdb, cdb, ...)")
    p.add_argument("--postfix-config-dir", type=Path, help="passed as postmap -c DIR")
    p.add_argument("--force", action="store_true", help="run postmap even if unchanged")

    p = add("totp", cmd_totp, "print an RFC 6238 TOTP code; the secret is read from stdin")
    p.add_argument("--digits", type=int, default=6)
    p.add_argument("--period", type=int, default=30)
    p.add_argument("--algorithm", choices=("sha1", "sha256", "sha512"), default="sha1")
    p.add_argument("--encoding", choices=("base32", "hex", "ascii"), default="base32")
    p.add_argument("--time", type=float, help="unix time to compute the code for")

    p = add(
        "example",
        cmd_example,
        "print a ready-made fetchmailrc, systemd units, crontab lines or postfix settings "
        "for the -c accounts",
    )
    p.add_argument("kind", choices=("fetchmailrc", "systemd", "cron", "postfix"))
    p.add_argument(
        "--postfix-map",
        type=Path,
        help="systemd/cron: the job also rebuilds this postfix map; postfix: the map's path",
    )
    p.add_argument("--type", help="postfix map type (default hash)")
    p.add_argument("--postfix-dir", type=Path, help="postfix: where the maps go (/etc/postfix)")
    p.add_argument(
        "--section",
        choices=("main.cf", "master.cf", "tls_policy", "relayhost_map", "sasl_passwd"),
        help="postfix: print only this section's lines",
    )
    p.add_argument("--fetchmail", help="systemd/cron: the patched fetchmail binary")
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
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        from tokens import legacy

        if legacy.is_classic(arguments):
            arguments = legacy.translate(arguments)
    except TokenError as exc:
        Ui.error(str(exc))
        return exc.exit_code
    args = build_parser().parse_args(arguments)
    Ui.quiet = args.quiet
    try:
        return int(args._run(args))
    except TokenError as exc:
        Ui.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print("fetchmail-oauth2: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # not a file we failed to write: see main()
    except OSError as exc:  # e.g. a token directory we may not write to
        Ui.error(str(exc))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
