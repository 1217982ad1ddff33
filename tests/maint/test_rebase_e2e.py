"""`rebase` with its end-to-end cells: real builds and runs in Docker (slow)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from harness import paths
from tests.helpers.skips import skip_loudly
from tests.helpers.workshop import NEW_FILE, Cli, Workshop

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.fetchmail_source]


def test_widening_runs_the_cells_first(
        workshop: Workshop, cli: Cli, docker_engine: None) -> None:
    if not (paths.PATCHES_DIR / "oauth64" / "series.toml").is_file():
        skip_loudly("patches/oauth64 is not there yet")
    shutil.copytree(paths.PATCHES_DIR / "oauth64", workshop.patches_dir / "oauth64")
    workshop.table(("oauth64", "6.4.22", "6.4.32", "fuzz0"))

    out = cli("rebase", "--onto", "6.4.33", "--patches-dir", str(workshop.patches_dir))

    assert out.returncode == 0, out.stdout + out.stderr
    assert "end-to-end cells: 13 pass, 0 fail, 0 error, 0 skip" in out.stdout
    ranges = tomllib.loads((workshop.patches_dir / "series.toml").read_text())["range"]
    assert ranges == [{"series": "oauth64", "first": "6.4.22", "last": "6.4.33", "apply": "fuzz0"}]


def test_failing_cells_install_nothing(
        workshop: Workshop, cli: Cli, docker_engine: None, isolated_cache: Path) -> None:
    # a series without OAuth: fetchmail builds, but no cell can log in
    workshop.make_series("notes", "6.4.32", [NEW_FILE])
    workshop.table(("notes", "6.4.32", "6.4.32", "fuzz0"))
    before = (workshop.patches_dir / "series.toml").read_text()

    out = cli("rebase", "--onto", "6.4.33", "--patches-dir", str(workshop.patches_dir))

    assert out.returncode == 1, out.stdout + out.stderr  # CellFailure: cells failed
    assert "cells failed for 6.4.33 with notes" in out.stderr
    assert (workshop.patches_dir / "series.toml").read_text() == before
