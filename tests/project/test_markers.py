"""Markers CI relies on: `-m 'not docker'` leaves out every test that asks for the engine,
whether or not its module remembered to mark it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collected(where: Path, *args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(where), *args, str(where)],
        cwd=where, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    return [ln.split("::")[-1] for ln in proc.stdout.splitlines() if "::" in ln]


def test_an_unmarked_test_asking_for_the_engine_is_a_docker_test(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import docker_engine, pytest_collection_modifyitems  # noqa\n")
    (tmp_path / "test_sample.py").write_text(
        "def test_needs_docker(docker_engine):\n    pass\n\n"
        "def test_plain():\n    pass\n")
    assert _collected(tmp_path) == ["test_needs_docker", "test_plain"]
    assert _collected(tmp_path, "-m", "not docker") == ["test_plain"]
    assert _collected(tmp_path, "-m", "docker") == ["test_needs_docker"]
