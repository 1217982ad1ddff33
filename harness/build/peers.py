"""Host packages: the tools a build needs on the host, the real protocol peers the tests compare
against (Debian's fetchmail, curl, dovecot, postfix), the readers of the token tool's examples
(systemd-analyze for units, cron's crontab -n), and what fetchmail's own fetchmailconf needs."""

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
    "quilt": "/usr/bin/quilt",  # `export --format quilt` is checked with `quilt push -a`
    "dovecot-imapd": "/usr/lib/dovecot/imap",
    "dovecot-pop3d": "/usr/lib/dovecot/pop3",
    "dovecot-submissiond": "/usr/lib/dovecot/submission",
    "postfix": "/usr/sbin/postmap",
    "autoconf": "/usr/bin/autoconf",
    "patch": "/usr/bin/patch",
    "cron": "/usr/bin/crontab",
    "systemd": "/usr/bin/systemd-analyze",
    "binutils": "/usr/bin/objdump",  # the package tests read the exported binaries' sections
    # fetchmailconf (checked against the patched --configdump) imports past/future
    "python3-future": "/usr/lib/python3/dist-packages/past/__init__.py",
}


# What `build` runs on the host: GNU patch applies the series before the container build,
# git (under GitPython) mirrors and checks out fetchmail.
HOST_TOOLS = {
    "patch": "/usr/bin/patch",
    "git": "/usr/bin/git",
}


def missing(packages: dict[str, str]) -> list[str]:
    return [pkg for pkg, program in packages.items() if not os.path.exists(program)]


def ensure_host_tools() -> list[str]:
    """apt-get install the build's host tools that are missing (root only); what was installed."""
    return _ensure(HOST_TOOLS, "host tools for builds", "builds cannot apply the series")


def ensure_test_peers() -> list[str]:
    """apt-get install whatever peer is missing (root only); returns what was installed."""
    return _ensure(TEST_PEERS, "test peers", "the tests that need them skip")


def _ensure(packages: dict[str, str], what: str, without: str) -> list[str]:
    missing_now = missing(packages)
    if not missing_now:
        return []
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise EngineError(
            f"{what} missing: " + " ".join(missing_now)
            + f" — install them (apt-get install …) or run as root; without them {without}"
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
        log.info("installing %s: %s", what, " ".join(missing_now))
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing_now]
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
            if subprocess.run(cmd, env=env, check=False).returncode != 0:
                raise EngineError("apt-get install failed for: " + " ".join(missing_now))
    finally:
        if created_policy:
            os.unlink(policy)
    return missing_now
