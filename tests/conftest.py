"""Shared fixtures: every test gets its own cache dir; the real one is read-only input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import paths

# Resolved before any test redirects the cache: where a fetchmail source can be found.
_REAL_CACHE = paths.cache_dir()
_REAL_MIRROR = paths.mirror_dir(_REAL_CACHE)


def _find_upstream() -> str | None:
    explicit = os.environ.get("FETCHMAIL_UPSTREAM")
    if explicit:
        return explicit
    if (_REAL_MIRROR / "HEAD").exists():
        return str(_REAL_MIRROR)
    return None


FETCHMAIL_UPSTREAM = _find_upstream()


def skip_loudly(reason: str) -> None:
    """Skip, and make sure the skip is visible in CI output, not just in -ra."""
    message = f"SKIPPED LOUDLY: {reason}"
    print(f"\n*** {message} ***", file=sys.stderr)
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test touches the user's real cache: FETCHMAIL_HARNESS_CACHE points at a temp dir."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("FETCHMAIL_HARNESS_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def fetchmail_upstream() -> str:
    """A git URL/path holding fetchmail's history, or a loud skip."""
    if FETCHMAIL_UPSTREAM is None:
        skip_loudly(
            "no fetchmail source: set FETCHMAIL_UPSTREAM or run "
            "`fetchmail-harness sources --upstream URL` once"
        )
    assert FETCHMAIL_UPSTREAM is not None
    return FETCHMAIL_UPSTREAM


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine that answers, or a loud skip."""
    if not docker_available():
        skip_loudly("no Docker engine answers (run `fetchmail-harness setup` as root)")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache shared by the expensive docker-backed tests of a run (still not the real one)."""
    yield tmp_path_factory.mktemp("session-cache")
