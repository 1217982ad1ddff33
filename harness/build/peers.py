"""Real peers the tests compare against: Debian's fetchmail, curl, dovecot, postfix, and the
readers of the token tool's examples (systemd-analyze for units, cron's crontab -n)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

from harness.errors import EngineError

log = logging.getLogger(__name__)

# Debian package -> a program it installs (present means nothing to do).
TEST_PEERS = {
    "fetchmail": "/usr/bin/fetchmail",
    "curl": "/usr/bin/curl",
    "dovecot-imapd": "/usr/lib/dovecot/imap",
    "dovecot-pop3d": "/usr/lib/dovecot/pop3",
    "dovecot-submissiond": "/usr/lib/dovecot/submission",
    "postfix": "/usr/sbin/postmap",
    "autoconf": "/usr/bin/autoconf",
    "patch": "/usr/bin/patch",
    "cron": "/usr/bin/crontab",
    "systemd": "/usr/bin/systemd-analyze",
}


def missing_peers() -> list[str]:
    return [pkg for pkg, program in TEST_PEERS.items() if not os.path.exists(program)]


def ensure_test_peers() -> list[str]:
    """apt-get install whatever peer is missing (root only); returns what was installed."""
    missing = missing_peers()
    if not missing:
        return []
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise EngineError(
            "test peers missing: " + " ".join(missing)
            + " — install them (apt-get install …) or run as root; the tests that need them skip"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # postfix asks how to configure itself; a test peer needs only postmap.
    subprocess.run(
        ["debconf-set-selections"],
        input="postfix postfix/main_mailer_type select No configuration\n",
        text=True, check=False, env=env,
    )
    # Services must not start at install time (there may be no init system at all).
    policy = "/usr/sbin/policy-rc.d"
    created_policy = not os.path.exists(policy)
    if created_policy:
        with open(policy, "w") as fh:
            fh.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
    try:
        log.info("installing test peers: %s", " ".join(missing))
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
            if subprocess.run(cmd, env=env, check=False).returncode != 0:
                raise EngineError("apt-get install failed for: " + " ".join(missing))
    finally:
        if created_policy:
            os.unlink(policy)
    return missing
