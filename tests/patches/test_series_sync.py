"""The stored derived series are exactly what `series regenerate` gives from the canonical one,
every recorded resolution and amendment is still used, and every table range holds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import paths
from harness.maint.regenerate import regenerate

pytestmark = pytest.mark.fetchmail_source


def test_stored_series_are_in_sync_with_the_canonical_one(
        fetchmail_upstream: str, tmp_path: Path) -> None:
    copy = tmp_path / "patches"
    shutil.copytree(paths.PATCHES_DIR, copy)
    said: list[str] = []
    code = regenerate(copy, fetchmail_upstream, check=True, say=said.append)
    assert code == 0, "\n".join(said)
    assert any(line.startswith("in sync") for line in said)
    # the check wrote nothing
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == sorted(
        p.relative_to(paths.PATCHES_DIR) for p in paths.PATCHES_DIR.rglob("*"))
