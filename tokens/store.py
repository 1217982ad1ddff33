"""Where the refresh token is kept: refresh_token_file, or a command pair (refresh_token_cmd
prints it, refresh_token_store_cmd stores what it reads on stdin) for gpg, pass or a keyring
tool. Neither needs D-Bus, so cron and a root postfix job can use either."""

from __future__ import annotations

from tokens.config import Config
from tokens.errors import ConfigError
from tokens.files import atomic_write, read_secret

_READ: dict[str, str | None] = {}  # refresh_token_cmd -> what it printed (once per process)
CMD_TIMEOUT = 120


def _run(command: str, key: str, stdin: str | None) -> str:
    import shlex
    import subprocess

    try:
        done = subprocess.run(
            shlex.split(command),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CMD_TIMEOUT,
            check=False,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{key} {command!r} could not run: {exc}") from exc
    if done.returncode != 0:
        raise ConfigError(f"{key} {command!r} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def read_refresh(cfg: Config) -> str | None:
    """The refresh token, None when there is none yet."""
    if cfg.refresh_token_file is not None:
        return read_secret(cfg.refresh_token_file)
    command = cfg.refresh_token_cmd
    assert command is not None  # the config requires the pair without a file
    if command not in _READ:
        value = _run(command, "refresh_token_cmd", None).strip()
        if "\n" in value:
            raise ConfigError(f"refresh_token_cmd {command!r} must print one line (a token)")
        _READ[command] = value or None
    return _READ[command]


def write_refresh(cfg: Config, token: str) -> None:
    if cfg.refresh_token_file is not None:
        atomic_write(cfg.refresh_token_file, (token + "\n").encode())
        return
    command = cfg.refresh_token_store_cmd
    assert command is not None and cfg.refresh_token_cmd is not None
    try:
        _run(command, "refresh_token_store_cmd", token + "\n")
    except ConfigError as exc:
        # the provider may have retired the old token already: do not lose the new one
        rescue = cfg.state_file.with_name(cfg.state_file.name + ".refresh-rescue")
        atomic_write(rescue, (token + "\n").encode())
        raise ConfigError(
            f"{exc}; the new refresh token was written to {rescue} (0600) instead: store it "
            "with the command yourself, then delete the file"
        ) from None
    _READ[cfg.refresh_token_cmd] = token
