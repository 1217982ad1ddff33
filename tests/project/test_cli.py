from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cli import build_parser, main


def test_every_command_module_is_wired() -> None:
    parser = build_parser()
    help_text = parser.format_help()
    for name in ("build", "apply", "serve", "matrix", "run", "rebase", "uncovered", "diff"):
        assert name in help_text, f"subcommand {name} missing from fetchmail-harness --help"


def test_unknown_version_exits_with_config_error_code(
    fetchmail_upstream: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FETCHMAIL_UPSTREAM", fetchmail_upstream)
    code = main(["apply", "6.4.99"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown fetchmail version '6.4.99'" in err
    assert "fetchmail-harness versions" in err


def test_module_entry_point_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "harness", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("fetchmail-harness ")
