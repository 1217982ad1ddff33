"""Where the harness finds its data (patch series, container recipe) and keeps its cache."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> Path:
    """`patches/` or `containers/`: shipped inside the package by a wheel or sdist install
    (pip, pipx), else the checkout's own top-level folder (editable install, `python -m`)."""
    packaged = resources.files("harness") / name
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return PROJECT_ROOT / name


PATCHES_DIR = _data_dir("patches")
CONTAINERS_DIR = _data_dir("containers")


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
