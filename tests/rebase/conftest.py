"""Fixtures of the rebase tests: a workshop for throwaway series, and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rebase_helpers import Cli, Workshop

from harness.cli import main


@pytest.fixture
def workshop(fetchmail_upstream: str, tmp_path: Path) -> Workshop:
    patches = tmp_path / "patches"
    patches.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return Workshop(fetchmail_upstream, scratch, patches)


@pytest.fixture
def cli(fetchmail_upstream: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    """The real `fetchmail-harness` entry point, in this process (imports cost seconds)."""
    monkeypatch.setenv("FETCHMAIL_UPSTREAM", fetchmail_upstream)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["fetchmail-harness", *args], code, out, err)

    return run


@pytest.fixture
def cli_subprocess(fetchmail_upstream: str, tmp_path: Path) -> Cli:
    """`python -m harness` in a subprocess, as a maintainer runs it."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, FETCHMAIL_UPSTREAM=fetchmail_upstream)
        return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=300)

    return run
