"""Loud skips, and what the environment offers: a fetchmail source, a Docker engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings

import pytest

from harness import paths

# Resolved before any test redirects the cache: where a fetchmail source can be found.
_REAL_MIRROR = paths.mirror_dir(paths.cache_dir())


def _find_upstream() -> str | None:
    explicit = os.environ.get("FETCHMAIL_UPSTREAM")
    if explicit:
        return explicit
    if (_REAL_MIRROR / "HEAD").exists():
        return str(_REAL_MIRROR)
    return None


FETCHMAIL_UPSTREAM = _find_upstream()


def _find_plugin_upstream() -> str | None:
    """$XOAUTH2_PLUGIN_UPSTREAM, else the user's own mirror of cyrus-sasl-xoauth2, else None."""
    from harness.relay.plugin import UPSTREAM_ENV, mirror_path

    explicit = os.environ.get(UPSTREAM_ENV)
    if explicit:
        return explicit
    mirror = mirror_path(paths.cache_dir())
    return str(mirror) if (mirror / "HEAD").exists() else None


PLUGIN_UPSTREAM = _find_plugin_upstream()


def skip_loudly(reason: str) -> None:
    """Skip, and make sure the skip is visible in CI output, not just in -ra."""
    message = f"SKIPPED LOUDLY: {reason}"
    print(f"\n*** {message} ***", file=sys.stderr)
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def need_dovecot() -> None:
    """Debian's Dovecot with its submission service, and root to run a private instance."""
    from harness.mockserver.dovecot import SUBMISSION_BINARY, dovecot_binary

    if dovecot_binary() is None:
        skip_loudly("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
    if not os.path.exists(SUBMISSION_BINARY):
        skip_loudly("dovecot-submissiond is not installed (setup --test-peers)")
    if os.geteuid() != 0:
        skip_loudly("the private dovecot instance needs root (it drops to nobody for mail)")
