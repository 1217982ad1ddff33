"""`fetchmail-harness`: subcommands are discovered from harness.commands.

Both CLIs (this one and tokens.cli) dispatch the same way: `main` -> `_dispatch` parses, runs
the subcommand's handler (`args._run`) and turns its error into the error's exit code; Ctrl-C
is EXIT_INTERRUPTED, a closed stdout EXIT_CLOSED_PIPE.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import cast

from harness import __version__, commands
from harness.commands import Command
from harness.errors import EXIT_CLOSED_PIPE, EXIT_INTERRUPTED, HarnessError

_CONTRACT = ("NAME", "HELP", "add_arguments", "run")


def _command_modules() -> list[Command]:
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.ispkg)
    found: list[Command] = []
    for name in names:
        module = importlib.import_module(f"harness.commands.{name}")
        missing = [a for a in _CONTRACT if not hasattr(module, a)]
        if missing:
            raise TypeError(f"{module.__name__} is not a Command: no {', '.join(missing)}")
        found.append(cast(Command, module))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fetchmail-harness",
        description="Patch, build and test fetchmail 6.x with OAuth2 (XOAUTH2/OAUTHBEARER).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            code = _dispatch(argv)
        finally:  # also after argparse's --help: a reader gone shows up here, not at exit
            sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _closed_pipe()


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args._run(args))
    except HarnessError as exc:
        print(f"fetchmail-harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fetchmail-harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _closed_pipe() -> int:
    """stdout's reader went away (`| head`): end quietly, as a program killed by SIGPIPE does.
    Python would still flush stdout at exit and complain: point it at /dev/null first."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE
