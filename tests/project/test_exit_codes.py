"""One exit-code policy for every command of both CLIs, as the README's table states it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tokens.cli
from harness import errors
from harness.cli import main as harness_main
from harness.commands import versions
from tokens.errors import EXIT_CODES_HELP

ROOT = Path(__file__).resolve().parents[2]


def _readme_table() -> dict[int, tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    block = text.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+?) \| (.+?) \|$", block, re.M)
    return {int(code): (harness, oauth2) for code, harness, oauth2 in rows}


def test_the_readme_table_is_the_harness_policy() -> None:
    table = _readme_table()
    assert sorted(table) == list(range(8))
    words = {errors.ConfigError: "bad input", errors.SourceError: "source",
             errors.PatchError: "does not apply", errors.BuildError: "build failed",
             errors.EngineError: "Docker engine", errors.HarnessError: "any other harness error",
             errors.CellFailure: "cells failed"}
    for error, word in words.items():
        assert word in table[error.exit_code][0], (error, table[error.exit_code])
    assert errors.EXIT_FAILED == 1 and "the answer is no" in table[1][0]


def test_the_readme_table_is_the_token_refreshers_policy() -> None:
    table = _readme_table()
    helped = dict(re.findall(r"^\s+(\d+)\s+(.+)$", EXIT_CODES_HELP, re.M))
    assert sorted(int(c) for c in helped) == sorted(table)
    for code, text in helped.items():  # the README says the same, shorter
        first = re.split(r"[ :(,]", table[int(code)][1].lower())[0]
        assert first in text.lower(), (code, text, table[int(code)][1])


def test_ctrl_c_is_130_in_both_clis(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(versions, "run", interrupted)
    assert harness_main(["versions"]) == errors.EXIT_INTERRUPTED == 130
    monkeypatch.setattr(tokens.cli, "cmd_example", interrupted)
    assert tokens.cli.main(["example", "cron"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_an_error_ends_with_its_own_code(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    for error in (errors.HarnessError("boom"), errors.EngineError("no engine"),
                  errors.ConfigError("bad")):
        def failing(_args: object, error: Exception = error) -> int:
            raise error

        monkeypatch.setattr(versions, "run", failing)
        assert harness_main(["versions"]) == error.exit_code  # type: ignore[attr-defined]
        assert f"fetchmail-harness: error: {error}" in capsys.readouterr().err
