"""Account configs: `key = value` files like the classic fetchmail-oauth2.py, plus presets.

The syntax (comments, quoting, `[account]` sections) is in `config_text`.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path
from typing import NamedTuple

from tokens.config_text import Values, parse_sections
from tokens.errors import ConfigError
from tokens.files import check_private
from tokens.urls import check_url

MS_SCOPES = " ".join(
    [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    ]
)
MS_BASE = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
OOB_REDIRECTS = ("urn:ietf:wg:oauth:2.0:oob", "oob")

# Provider presets: defaults that explicit config lines override.
PRESETS: dict[str, dict[str, str]] = {
    "google": {
        "auth_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "device_auth_url": "https://oauth2.googleapis.com/device/code",
        "scope": "https://mail.google.com/",
        "auth_params": "access_type=offline prompt=consent",
        "relay": "[smtp.gmail.com]:587",
        "imap_server": "imap.gmail.com",
        "smtp_server": "smtp.gmail.com",
    },
    "microsoft": {
        "auth_url": MS_BASE + "/authorize",
        "token_url": MS_BASE + "/token",
        "device_auth_url": MS_BASE + "/devicecode",
        "scope": MS_SCOPES,
        "auth_params": "",
        "relay": "[smtp.office365.com]:587",
        "imap_server": "outlook.office365.com",
        "smtp_server": "smtp.office365.com",
    },
}
TENANT_RE = re.compile(
    r"^(common|organizations|consumers|[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
    r"|[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})$"
)

# key -> help; the file may contain only these.
KEYS: dict[str, str] = {
    "provider": "google, microsoft or custom (default custom: give auth_url and token_url)",
    "tenant": "Microsoft tenant: common, organizations, consumers, a tenant ID or domain",
    "client_id": "OAuth2 client ID (required)",
    "client_secret": "OAuth2 client secret (omit for public clients)",
    "client_secret_cmd": "command printing the client secret (instead of client_secret)",
    "client_auth": "how the secret is sent: post (in the form, default) or basic (HTTP Basic, "
    "RFC 6749 client_secret_basic)",
    "refresh_token_file": "where the refresh token lives (or the _cmd pair below)",
    "refresh_token_cmd": "instead of refresh_token_file: command printing the refresh token "
    "(gpg, pass, a keyring tool); run only when a refresh is due",
    "refresh_token_store_cmd": "with refresh_token_cmd: command that stores the refresh "
    "token it reads on stdin",
    "access_token_file": "fetchmail's passwordfile: the access token and a newline (required)",
    "state_file": "sidecar with expiry metadata (default: access_token_file + .state)",
    "max_age_sec": "refresh when the access token is older than this (default 3000)",
    "refresh_margin_sec": "refresh when the token expires within this (default 300; at most "
    "half the token's lifetime)",
    "auth_url": "authorization endpoint",
    "token_url": "token endpoint",
    "device_auth_url": "RFC 8628 device authorization endpoint",
    "scope": "space-separated scopes",
    "auth_params": "extra authorization request parameters, `k=v k=v`",
    "redirect_uri": "redirect URI; loopback flow: http://127.0.0.1|[::1]|localhost[:PORT][/PATH] "
    "(a fixed PORT is listened on, e.g. for ssh -L)",
    "user": "mail account (login_hint, SASL user, postfix map)",
    "postfix_relay": "puts the account in the postfix map under this relay, e.g. "
    "[smtp.gmail.com]:587",
    "postfix_key": "puts the account in the postfix map under this key (its sender address, "
    "for smtp_sender_dependent_authentication)",
    "imap_server": "IMAP host[:port] `check` tries by default (imaps://, 993)",
    "smtp_server": "SMTP host[:port] `check` tries by default (submission://, 587)",
    "notify_cmd": "shell command run once when the account needs a person (re-authorisation, "
    "scope or client refused); gets FETCHMAIL_OAUTH2_ACCOUNT, _REASON, _COMMAND, _STATE",
    "http_timeout_sec": "seconds one provider request may take in all, connect to last byte "
    "(default 30)",
    "retries": "extra attempts on transient provider failures (default 3)",
    "retry_backoff_sec": "first backoff delay, doubled each retry (default 2)",
}
# keys of the classic script that mean nothing here: refused with what to do instead
RETIRED_KEYS = {
    "umask": "token files are always written 0600 (and the postfix map keeps its own mode); "
    "delete the line",
}
REQUIRED = ("client_id", "access_token_file")
_SECRETS: dict[str, str] = {}  # client_secret_cmd -> what it printed (run once per process)
# key -> (default, lowest, highest, lowest allowed?)
NUMBERS: dict[str, tuple[float, float, float, bool]] = {
    "max_age_sec": (3000, 0, 1e9, True),
    "refresh_margin_sec": (300, 0, 1e9, True),
    "http_timeout_sec": (30.0, 0, 3600, False),
    "retries": (3, 0, 20, True),
    "retry_backoff_sec": (2.0, 0, 600, True),
}


class Config(NamedTuple):
    path: Path
    account: str | None
    provider: str
    client_id: str
    client_secret_value: str | None
    client_secret_cmd: str | None
    refresh_token_file: Path | None  # None: kept by refresh_token_cmd / _store_cmd
    access_token_file: Path
    state_file: Path
    auth_url: str
    token_url: str
    device_auth_url: str | None
    scope: str
    auth_params: dict[str, str]
    redirect_uri: str | None
    user: str | None
    postfix_relay: str | None  # explicit: the account goes into the map
    postfix_key: str | None
    relay: str | None  # postfix_relay, or the preset's relay host
    imap_server: str | None = None
    smtp_server: str | None = None
    notify_cmd: str | None = None
    refresh_token_cmd: str | None = None
    refresh_token_store_cmd: str | None = None
    max_age_sec: int = 3000
    refresh_margin_sec: int = 300
    http_timeout_sec: float = 30.0
    retries: int = 3
    retry_backoff_sec: float = 2.0
    client_auth: str = "post"

    @property
    def name(self) -> str:
        """How messages name the account: `file [section]`."""
        return f"{self.path} [{self.account}]" if self.account else str(self.path)

    def command(self, subcommand: str) -> str:
        """The full command line that runs `subcommand` for this account."""
        import shlex

        account = f" --account {shlex.quote(self.account)}" if self.account else ""
        return f"fetchmail-oauth2 -c {shlex.quote(str(self.path))}{account} {subcommand}"

    @property
    def refresh_source(self) -> str:
        """Where the refresh token is kept, for messages."""
        return str(self.refresh_token_file or "refresh_token_cmd's output")

    @property
    def lock_file(self) -> Path:
        return self.access_token_file.with_name(self.access_token_file.name + ".lock")

    @property
    def in_postfix_map(self) -> bool:
        return bool(self.postfix_relay or self.postfix_key)

    def client_secret(self) -> str | None:
        """The secret, running client_secret_cmd once if that is how it is given."""
        if self.client_secret_cmd is None:
            return self.client_secret_value
        if self.client_secret_cmd not in _SECRETS:
            _SECRETS[self.client_secret_cmd] = _run_secret_cmd(self.client_secret_cmd)
        return _SECRETS[self.client_secret_cmd]


def _run_secret_cmd(command: str) -> str:
    import shlex
    import subprocess

    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"client_secret_cmd {command!r} could not run: {exc}") from exc
    if done.returncode != 0:
        raise ConfigError(
            f"client_secret_cmd {command!r} exited {done.returncode}: {done.stderr.strip()}"
        )
    secret = done.stdout.rstrip("\r\n")
    if not secret or "\n" in secret:
        raise ConfigError(f"client_secret_cmd {command!r} must print exactly one non-empty line")
    return secret


def _check_keys(path: Path, values: Values) -> None:
    for key, (lineno, _) in values.items():
        if key in RETIRED_KEYS:
            raise ConfigError(f"{path}:{lineno}: {key} is not used: {RETIRED_KEYS[key]}")
        if key not in KEYS:
            import difflib

            close = difflib.get_close_matches(key, KEYS, n=1)
            # name the key only when it is a near miss of a real one: it may be a secret
            shown = f" {key!r} (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}:{lineno}: unknown key{shown}; known keys: {', '.join(KEYS)}")


def _number(path: Path, values: Values, key: str) -> float:
    default, low, high, low_ok = NUMBERS[key]
    if key not in values:
        return default
    lineno, raw = values[key]
    try:
        number = float(raw)
    except ValueError:
        raise ConfigError(f"{path}:{lineno}: {key} must be a number, got {raw!r}") from None
    whole = key == "retries"
    if not math.isfinite(number) or (whole and number != int(number)):
        kind = "a whole number" if whole else "a finite number"
        raise ConfigError(f"{path}:{lineno}: {key} must be {kind}, got {raw!r}")
    if number < low or (number == low and not low_ok) or number > high:
        bound = f">= {low:g}" if low_ok else f"> {low:g}"
        raise ConfigError(f"{path}:{lineno}: {key} must be {bound} and <= {high:g}, got {raw!r}")
    return number


def _resolve(base: Path, raw: str) -> Path:
    path = Path(os.path.expanduser(raw))
    return path if path.is_absolute() else base / path


def _sidecar(access: Path) -> Path:
    return access.with_name(access.name + ".state")


def read_config_text(path: Path) -> str:
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"config {path} is a directory: give the config file's path")
        check_private(path)
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def load_accounts(path: Path) -> list[Config]:
    """Every account of a config file (one, or one per `[section]`)."""
    path = Path(path)
    defaults, sections = parse_sections(path, read_config_text(path), KEYS)
    _check_keys(path, defaults)
    if not sections:
        return [_account(path, None, defaults)]
    configs = []
    for name, values in sections.items():
        _check_keys(path, values)
        configs.append(_account(path, name, {**defaults, **values}))
    check_distinct(configs)
    return configs


def load_config(path: Path, account: str | None = None) -> Config:
    """The one account of `path` (or its section `account`)."""
    configs = load_accounts(path)
    if account is not None:
        for cfg in configs:
            if cfg.account == account:
                return cfg
        names = ", ".join(c.account for c in configs if c.account) or "none"
        raise ConfigError(f"{path} has no section [{account}] (sections: {names})")
    if len(configs) != 1:
        names = ", ".join(c.account or "" for c in configs)
        raise ConfigError(f"{path} has several accounts ({names}): choose one with --account")
    return configs[0]


def _account(path: Path, account: str | None, values: Values) -> Config:
    get = {key: value for key, (_, value) in values.items()}
    where = f"{path} [{account}]" if account else str(path)

    def line(key: str) -> str:
        return f"{path}:{values[key][0]}" if key in values else where

    provider = get.get("provider", "custom").lower()
    if provider not in (*PRESETS, "custom"):
        raise ConfigError(f"{line('provider')}: provider must be google, microsoft or custom")
    preset = dict(PRESETS.get(provider, {}))
    tenant = get.get("tenant", "common")
    if "tenant" in get and provider != "microsoft":
        raise ConfigError(f"{line('tenant')}: tenant only applies to microsoft")
    if not TENANT_RE.match(tenant):
        raise ConfigError(
            f"{line('tenant')}: tenant must be common, organizations, consumers, "
            "a tenant ID (GUID) or a domain name"
        )
    preset = {key: value.format(tenant=tenant) for key, value in preset.items()}
    merged = {**preset, **get}

    for key in (*REQUIRED, "auth_url", "token_url"):
        if not merged.get(key):
            raise ConfigError(
                f"{where}: missing required key {key!r} (add a line `{key} = ...`"
                + (" or set provider = google|microsoft)" if key.endswith("_url") else ")")
            )
    commands = [k for k in ("refresh_token_cmd", "refresh_token_store_cmd") if merged.get(k)]
    if merged.get("refresh_token_file") and commands:
        raise ConfigError(
            f"{line(commands[0])}: give refresh_token_file or refresh_token_cmd and "
            "refresh_token_store_cmd, not both"
        )
    if not merged.get("refresh_token_file") and len(commands) != 2:
        raise ConfigError(
            f"{where}: missing required key 'refresh_token_file' (add a line "
            "`refresh_token_file = ...`, or both refresh_token_cmd and refresh_token_store_cmd)"
        )
    if "client_secret" in get and "client_secret_cmd" in get:
        raise ConfigError(
            f"{line('client_secret_cmd')}: give client_secret or client_secret_cmd, not both"
        )
    client_auth = get.get("client_auth", "post").lower()
    if client_auth not in ("post", "basic"):
        raise ConfigError(
            f"{line('client_auth')}: client_auth must be post or basic, not {get['client_auth']!r}"
        )
    if client_auth == "basic" and not (get.get("client_secret") or get.get("client_secret_cmd")):
        raise ConfigError(
            f"{line('client_auth')}: client_auth=basic needs client_secret or client_secret_cmd"
        )
    for key in ("auth_url", "token_url", "device_auth_url"):
        if merged.get(key):
            try:
                check_url(merged[key])
            except ConfigError as exc:
                raise ConfigError(f"{line(key)}: {key}: {exc}") from None
    auth_params: dict[str, str] = {}
    for item in merged.get("auth_params", "").split():
        k, sep, v = item.partition("=")
        if not sep:
            raise ConfigError(f"{line('auth_params')}: auth_params item {item!r} is not k=v")
        auth_params[k] = v
    numbers = {key: _number(path, values, key) for key in NUMBERS}

    base = path.parent
    access = _resolve(base, merged["access_token_file"])
    state_raw = merged.get("state_file")
    cfg = Config(
        path=path,
        account=account,
        provider=provider,
        client_id=merged["client_id"],
        client_secret_value=get.get("client_secret") or None,
        client_secret_cmd=get.get("client_secret_cmd") or None,
        refresh_token_file=(
            _resolve(base, merged["refresh_token_file"])
            if merged.get("refresh_token_file")
            else None
        ),
        access_token_file=access,
        state_file=_resolve(base, state_raw) if state_raw else _sidecar(access),
        auth_url=merged["auth_url"],
        token_url=merged["token_url"],
        device_auth_url=merged.get("device_auth_url") or None,
        scope=merged.get("scope", ""),
        auth_params=auth_params,
        redirect_uri=merged.get("redirect_uri") or None,
        user=merged.get("user") or None,
        postfix_relay=get.get("postfix_relay") or None,
        postfix_key=get.get("postfix_key") or None,
        relay=merged.get("postfix_relay") or merged.get("relay") or None,
        imap_server=merged.get("imap_server") or None,
        smtp_server=merged.get("smtp_server") or None,
        notify_cmd=merged.get("notify_cmd") or None,
        refresh_token_cmd=merged.get("refresh_token_cmd") or None,
        refresh_token_store_cmd=merged.get("refresh_token_store_cmd") or None,
        max_age_sec=int(numbers["max_age_sec"]),
        refresh_margin_sec=int(numbers["refresh_margin_sec"]),
        http_timeout_sec=numbers["http_timeout_sec"],
        retries=int(numbers["retries"]),
        retry_backoff_sec=numbers["retry_backoff_sec"],
        client_auth=client_auth,
    )
    check_distinct([cfg])
    return cfg


def _files(cfg: Config) -> dict[str, Path]:
    files = {
        "refresh_token_file": cfg.refresh_token_file,
        "access_token_file": cfg.access_token_file,
        "state_file": cfg.state_file,
        "lock file (access_token_file + .lock)": cfg.lock_file,
    }
    return {role: path for role, path in files.items() if path is not None}


def _identity(path: Path) -> tuple[object, ...]:
    """The same file however it is spelt: (device, inode) when it exists, else its real path."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


def check_distinct(configs: list[Config]) -> None:
    """Refuse token, state and lock files that alias each other (within or across accounts)
    or the config file itself, and directories where files belong."""
    seen: dict[tuple[object, ...], str] = {}
    for cfg in configs:
        seen.setdefault(_identity(cfg.path), f"config file of {cfg.name}")
    for cfg in configs:
        for role, path in _files(cfg).items():
            if path.is_dir():
                raise ConfigError(
                    f"{cfg.name}: {role} {path} is a directory: give a file's path, "
                    f"e.g. {path / 'token'}"
                )
            ident = _identity(path)
            here = f"{role} of {cfg.name}"
            if ident in seen and seen[ident] != here:
                raise ConfigError(
                    f"{cfg.name}: {role} {path} is also the {seen[ident]}: every account "
                    "needs its own refresh_token_file, access_token_file and state_file"
                )
            seen[ident] = here
