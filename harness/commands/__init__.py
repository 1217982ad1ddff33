"""One module per `fetchmail-harness` subcommand, each a `Command`: harness.cli discovers them
(no central list to edit) and checks each has what the protocol names."""

from __future__ import annotations

import argparse
from typing import Protocol


class Command(Protocol):
    """What a command module defines: its name, one line of help, its arguments, its run.

    `run` returns the exit code (harness.errors: 0, EXIT_FAILED for "the answer is no") or
    raises a HarnessError carrying one.
    """

    NAME: str
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...
