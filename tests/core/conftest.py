"""Fixtures for the harness core: a shared fetchmail mirror, throwaway patches and series."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.sources import FetchmailSource


@pytest.fixture(scope="session")
def shared_source(fetchmail_upstream: str, session_cache: Path) -> FetchmailSource:
    """The upstream mirrored once into the session cache (worktrees are reused across tests)."""
    source = FetchmailSource(fetchmail_upstream, cache=session_cache)
    source.ensure_mirror()
    return source


@pytest.fixture
def tree_of(
    shared_source: FetchmailSource, tmp_path: Path
) -> Callable[[str], Path]:
    """A private, writable copy of fetchmail VERSION's tree."""

    made: list[Path] = []

    def copy(version: str) -> Path:
        src = shared_source.worktree(shared_source.resolve(version))
        dest = tmp_path / f"tree-{version}-{len(made)}"
        made.append(dest)
        shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        return dest

    return copy
