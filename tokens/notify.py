"""`notify_cmd`: tell a person, once, that an account needs them (like pizauth's
error_notify_cmd). The command runs under /bin/sh with these variables set:

FETCHMAIL_OAUTH2_ACCOUNT  the account (user=, else the config file and section)
FETCHMAIL_OAUTH2_CONFIG   the config file
FETCHMAIL_OAUTH2_STATE    reauth, scope, client or refused
FETCHMAIL_OAUTH2_REASON   what the provider said, and what to do
FETCHMAIL_OAUTH2_COMMAND  the command to run once it is fixed
"""

from __future__ import annotations

import os
import sys

from tokens.config import Config

NOTIFY_TIMEOUT = 60


def notify(cfg: Config, state: str, reason: str, command: str) -> None:
    """Run the account's notify_cmd, if any; a failing command is a warning, not an error."""
    if not cfg.notify_cmd:
        return
    import subprocess

    env = dict(
        os.environ,
        FETCHMAIL_OAUTH2_ACCOUNT=cfg.user or cfg.name,
        FETCHMAIL_OAUTH2_CONFIG=str(cfg.path),
        FETCHMAIL_OAUTH2_STATE=state,
        FETCHMAIL_OAUTH2_REASON=reason,
        FETCHMAIL_OAUTH2_COMMAND=command,
    )
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", cfg.notify_cmd],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NOTIFY_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"fetchmail-oauth2: warning: notify_cmd of {cfg.name} failed: {exc}", file=sys.stderr)
        return
    if done.returncode != 0:
        print(
            f"fetchmail-oauth2: warning: notify_cmd of {cfg.name} exited {done.returncode}: "
            f"{done.stderr.strip()[-500:]}",
            file=sys.stderr,
        )
