"""Where the harness keeps its cache (source mirror, worktrees, builds, results)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PATCHES_DIR = PROJECT_ROOT / "patches"
CONTAINERS_DIR = PROJECT_ROOT / "containers"


def cache_dir() -> Path:
    """$FETCHMAIL_HARNESS_CACHE, else $XDG_CACHE_HOME/fetchmail-harness, else ~/.cache/…"""
    explicit = os.environ.get("FETCHMAIL_HARNESS_CACHE")
    if explicit:
        path = Path(explicit)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "fetchmail-harness"
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror_dir(cache: Path | None = None) -> Path:
    """The harness's own bare mirror of the fetchmail upstream."""
    return (cache or cache_dir()) / "source" / "fetchmail.git"
