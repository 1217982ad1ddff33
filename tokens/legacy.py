"""The command line of Ogilvie's fetchmail-oauth2.py (fetchmail's contrib script), mapped.

Its three file modes work as aliases (`-c FILE --auto_refresh` is `-c FILE refresh`); its
other modes and its command-line values exit 2 naming what to run instead.
"""

from __future__ import annotations

import shlex
import sys

from tokens.errors import ConfigError

ALIASES = {
    "--obtain_refresh_token_file": ["authorize"],
    "--refresh": ["refresh", "--force"],
    "--auto_refresh": ["refresh"],
}
INSTEAD = {
    "--generate_oauth2_token": "authorize` (then `token --print`",
    "--generate_oauth2_string": "sasl --show-token",
    "--test_imap_authentication": "check imaps://IMAP_SERVER",
    "--test_smtp_authentication": "check submission://SMTP_SERVER",
}
CONFIG_OPTIONS = ("-c", "--config_file", "--config")
VALUE_OPTIONS = (
    "--client_id",
    "--client_secret",
    "--access_token_file",
    "--refresh_token_file",
    "--max_age_sec",
    "--scope",
    "--auth_url",
    "--token_url",
    "--redirect_uri",
    "--user",
    "--imap_server",
    "--smtp_server",
)
SECRET_OPTIONS = ("--refresh_token", "--access_token")
# what marks a classic command line (--user is also an option of `check` and `sasl`)
CLASSIC = (
    *ALIASES,
    *INSTEAD,
    *(o for o in VALUE_OPTIONS if o != "--user"),
    *SECRET_OPTIONS,
    "--umask",
    "--config_file",
)


def _name(arg: str) -> str:
    return arg.split("=", 1)[0]


def is_classic(argv: list[str]) -> bool:
    return any(_name(arg) in CLASSIC for arg in argv)


def translate(argv: list[str]) -> list[str]:
    """The classic command line as this tool's, or ConfigError saying what to run."""
    configs: list[str] = []
    flags: list[str] = []
    mode: str | None = None
    args = iter(argv)
    for arg in args:
        name, has_value, value = arg.partition("=")
        if name in CONFIG_OPTIONS:
            configs.append(value if has_value else next(args, ""))
        elif arg in ("-q", "--quiet"):
            flags.append(arg)
        elif name in ALIASES or name in INSTEAD:
            if mode is not None and mode != name:
                raise ConfigError(f"{mode} and {name} are two modes; give one")
            mode = name
        elif name in SECRET_OPTIONS:
            raise ConfigError(
                f"{name}: tokens are never taken on the command line (ps and shell history "
                "would show them); they live in refresh_token_file / access_token_file"
            )
        elif name in VALUE_OPTIONS or name == "--umask":
            key = name[2:]
            where = (
                "is not needed: token files are always written 0600"
                if key == "umask"
                else f"is a config key here: put `{key} = ...` in the config file (-c FILE)"
            )
            raise ConfigError(f"{name} {where}")
        else:
            raise ConfigError(
                f"{arg!r} mixed with the classic script's options; see fetchmail-oauth2 --help"
            )
    config_args = [a for c in configs for a in ("-c", c)]
    shown = shlex.join(["fetchmail-oauth2", *config_args])
    if mode is None:
        raise ConfigError(f"no mode given; e.g. `{shown} refresh`")
    if mode in INSTEAD:
        raise ConfigError(
            f"{mode} is a mode of the classic fetchmail-oauth2.py; here it is "
            f"`{shown} {INSTEAD[mode]}`"
        )
    new = [*flags, *config_args, *ALIASES[mode]]
    if sys.stderr.isatty():
        print(
            f"fetchmail-oauth2: note: {mode} is the classic spelling of "
            f"`{shlex.join(['fetchmail-oauth2', *new])}`",
            file=sys.stderr,
        )
    return new
