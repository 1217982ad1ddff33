"""Errors that carry the process exit code a command should end with: the one exit-code policy
of every `fetchmail-harness` command (the README's table lists it)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the answer is no: cells failed their checks, releases uncovered, series differ
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports when a pipe's reader has gone


class HarnessError(Exception):
    """A user-facing failure: the message says what went wrong and what to do."""

    exit_code: int = 7  # any harness error without a code of its own (below)

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(HarnessError):
    """Bad input from the user: arguments, selectors, version names, files."""

    exit_code = 2


class SourceError(HarnessError):
    """The fetchmail source could not be reached, mirrored or checked out."""

    exit_code = 3


class PatchError(HarnessError):
    """A patch series did not apply."""

    exit_code = 4


class BuildError(HarnessError):
    """A container build failed; the log path is in the message."""

    exit_code = 5


class EngineError(HarnessError):
    """No usable Docker engine."""

    exit_code = 6


class CellFailure(HarnessError):
    """End-to-end cells ran and failed their checks."""

    exit_code = EXIT_FAILED
