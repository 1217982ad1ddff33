"""The account config file: `key=value` lines like the classic fetchmail-oauth2.py, plus presets."""

from __future__ import annotations

import difflib
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tokens.errors import ConfigError
from tokens.files import check_private
from tokens.http import check_url

MS_SCOPES = " ".join(
    [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    ]
)
MS_BASE = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"

# Provider presets: defaults that explicit config lines override.
PRESETS: dict[str, dict[str, str]] = {
    "google": {
        "auth_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "device_auth_url": "https://oauth2.googleapis.com/device/code",
        "scope": "https://mail.google.com/",
        "auth_params": "access_type=offline prompt=consent",
        "postfix_relay": "[smtp.gmail.com]:587",
        "imap_server": "imap.gmail.com",
    },
    "microsoft": {
        "auth_url": MS_BASE + "/authorize",
        "token_url": MS_BASE + "/token",
        "device_auth_url": MS_BASE + "/devicecode",
        "scope": MS_SCOPES,
        "auth_params": "",
        "postfix_relay": "[smtp.office365.com]:587",
        "imap_server": "outlook.office365.com",
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
    "refresh_token_file": "where the refresh token lives (required)",
    "access_token_file": "fetchmail's passwordfile: the access token and a newline (required)",
    "state_file": "sidecar with expiry metadata (default: access_token_file + .state)",
    "max_age_sec": "refresh when the access token is older than this (default 3000)",
    "refresh_margin_sec": "refresh when the token expires within this (default 300)",
    "auth_url": "authorization endpoint",
    "token_url": "token endpoint",
    "device_auth_url": "RFC 8628 device authorization endpoint",
    "scope": "space-separated scopes",
    "auth_params": "extra authorization request parameters, `k=v k=v`",
    "redirect_uri": "redirect URI (loopback flow: only its host and path are used)",
    "user": "mail account (login_hint, SASL user, postfix map)",
    "postfix_relay": "relay key for the postfix SASL map, e.g. [smtp.gmail.com]:587",
    "postfix_key": "map key instead of postfix_relay (the sender address, for "
    "smtp_sender_dependent_authentication)",
    "imap_server": "default host for `check` (imaps://HOST:993)",
    "smtp_server": "SMTP host (classic key; `check submission://HOST`)",
    "umask": "accepted for classic configs; token files are always written 0600",
    "http_timeout_sec": "HTTP timeout (default 30)",
    "retries": "extra attempts on transient provider failures (default 3)",
    "retry_backoff_sec": "first backoff delay, doubled each retry (default 2)",
}
REQUIRED = ("client_id", "refresh_token_file", "access_token_file")


@dataclass(frozen=True)
class Config:
    path: Path
    provider: str
    client_id: str
    client_secret_value: str | None
    client_secret_cmd: str | None
    refresh_token_file: Path
    access_token_file: Path
    state_file: Path
    auth_url: str
    token_url: str
    device_auth_url: str | None
    scope: str
    auth_params: dict[str, str]
    redirect_uri: str | None
    user: str | None
    postfix_relay: str | None
    postfix_key: str | None
    imap_server: str | None = None
    max_age_sec: int = 3000
    refresh_margin_sec: int = 300
    http_timeout_sec: float = 30.0
    retries: int = 3
    retry_backoff_sec: float = 2.0
    client_auth: str = "post"
    _secret_cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def config_arg(self) -> str:
        return shlex.quote(str(self.path))

    @property
    def lock_file(self) -> Path:
        return self.access_token_file.with_name(self.access_token_file.name + ".lock")

    def client_secret(self) -> str | None:
        """The secret, running client_secret_cmd once if that is how it is given."""
        if self.client_secret_cmd is None:
            return self.client_secret_value
        if "secret" not in self._secret_cache:
            self._secret_cache["secret"] = _run_secret_cmd(self.client_secret_cmd)
        return self._secret_cache["secret"]


def _run_secret_cmd(command: str) -> str:
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


def parse_lines(path: Path, text: str) -> dict[str, tuple[int, str]]:
    """`key=value` lines -> {key: (line number, value)}; errors name the line."""
    values: dict[str, tuple[int, str]] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"{path}:{lineno}: expected `key=value`, got {line!r}")
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{path}:{lineno}: unknown key {key!r}{hint}; known keys: {', '.join(KEYS)}"
            )
        if key in values:
            raise ConfigError(
                f"{path}:{lineno}: {key!r} given twice (first on line {values[key][0]})"
            )
        values[key] = (lineno, value)
    return values


def _number(path: Path, values: dict[str, tuple[int, str]], key: str, default: float) -> float:
    if key not in values:
        return default
    lineno, raw = values[key]
    try:
        number = float(raw)
    except ValueError:
        raise ConfigError(f"{path}:{lineno}: {key} must be a number, got {raw!r}") from None
    if number < 0:
        raise ConfigError(f"{path}:{lineno}: {key} must not be negative")
    return number


def _resolve(base: Path, raw: str) -> Path:
    path = Path(os.path.expanduser(raw))
    return path if path.is_absolute() else base / path


def _sidecar(access: Path) -> Path:
    return access.with_name(access.name + ".state")


def load_config(path: Path) -> Config:
    path = Path(path)
    try:
        check_private(path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    values = parse_lines(path, text)
    get = {key: value for key, (_, value) in values.items()}

    provider = get.get("provider", "custom").lower()
    if provider not in (*PRESETS, "custom"):
        raise ConfigError(
            f"{path}:{values['provider'][0]}: provider must be google, microsoft or custom"
        )
    preset = dict(PRESETS.get(provider, {}))
    tenant = get.get("tenant", "common")
    if "tenant" in get and provider != "microsoft":
        raise ConfigError(f"{path}:{values['tenant'][0]}: tenant only applies to microsoft")
    if not TENANT_RE.match(tenant):
        raise ConfigError(
            f"{path}:{values['tenant'][0]}: tenant must be common, organizations, consumers, "
            "a tenant ID (GUID) or a domain name"
        )
    preset = {key: value.format(tenant=tenant) for key, value in preset.items()}
    merged = {**preset, **get}

    for key in (*REQUIRED, "auth_url", "token_url"):
        if not merged.get(key):
            raise ConfigError(
                f"{path}: missing required key {key!r} (add a line `{key}=...`"
                + (" or set provider=google|microsoft)" if key.endswith("_url") else ")")
            )
    if "client_secret" in get and "client_secret_cmd" in get:
        raise ConfigError(
            f"{path}:{values['client_secret_cmd'][0]}: give client_secret or "
            "client_secret_cmd, not both"
        )
    client_auth = get.get("client_auth", "post").lower()
    if client_auth not in ("post", "basic"):
        raise ConfigError(
            f"{path}:{values['client_auth'][0]}: client_auth must be post or basic, "
            f"not {get['client_auth']!r}"
        )
    if client_auth == "basic" and not (get.get("client_secret") or get.get("client_secret_cmd")):
        raise ConfigError(
            f"{path}:{values['client_auth'][0]}: client_auth=basic needs client_secret or "
            "client_secret_cmd"
        )
    for key in ("auth_url", "token_url", "device_auth_url"):
        if merged.get(key):
            try:
                check_url(merged[key])
            except ConfigError as exc:
                where = f"{path}:{values[key][0]}" if key in values else str(path)
                raise ConfigError(f"{where}: {key}: {exc}") from None
    auth_params: dict[str, str] = {}
    for item in merged.get("auth_params", "").split():
        k, sep, v = item.partition("=")
        if not sep:
            raise ConfigError(f"{path}: auth_params item {item!r} is not k=v")
        auth_params[k] = v

    base = path.parent
    access = _resolve(base, merged["access_token_file"])
    state_raw = merged.get("state_file")
    return Config(
        path=path,
        provider=provider,
        client_id=merged["client_id"],
        client_secret_value=get.get("client_secret") or None,
        client_secret_cmd=get.get("client_secret_cmd") or None,
        refresh_token_file=_resolve(base, merged["refresh_token_file"]),
        access_token_file=access,
        state_file=_resolve(base, state_raw) if state_raw else _sidecar(access),
        auth_url=merged["auth_url"],
        token_url=merged["token_url"],
        device_auth_url=merged.get("device_auth_url") or None,
        scope=merged.get("scope", ""),
        auth_params=auth_params,
        redirect_uri=merged.get("redirect_uri") or None,
        user=merged.get("user") or None,
        postfix_relay=merged.get("postfix_relay") or None,
        postfix_key=merged.get("postfix_key") or None,
        imap_server=merged.get("imap_server") or None,
        max_age_sec=int(_number(path, values, "max_age_sec", 3000)),
        refresh_margin_sec=int(_number(path, values, "refresh_margin_sec", 300)),
        http_timeout_sec=_number(path, values, "http_timeout_sec", 30.0),
        retries=int(_number(path, values, "retries", 3)),
        retry_backoff_sec=_number(path, values, "retry_backoff_sec", 2.0),
        client_auth=client_auth,
    )
