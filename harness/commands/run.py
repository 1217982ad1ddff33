"""`fetchmail-harness run CELL_ID`: one matrix cell end to end (building first if needed)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from harness import paths
from harness.cell.kinds import parse_cell
from harness.cell.model import Cell
from harness.cell.relay import RelayCell
from harness.cell.result import CellResult
from harness.series.advisories import advisories_for, warning

NAME = "run"
HELP = ("run one matrix cell end to end, e.g. 6.4.33-oauth64-bookworm-imap-xoauth2-tls or "
        "relay-bookworm-rotation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cell", metavar="CELL_ID", help="cell identifier (see `matrix --list`)")
    parser.add_argument("--upstream", help="git URL or path of fetchmail")
    parser.add_argument("--plugin-upstream",
                        help="git URL or path of cyrus-sasl-xoauth2 (relay cells)")
    parser.add_argument("--patches-dir", type=Path, help="patch series dir (default patches/)")
    parser.add_argument("--log", type=Path, help="write the cell log here (default: cache dir)")
    parser.add_argument("--no-cache", action="store_true", help="rerun even with a cached result")


def run(args: argparse.Namespace) -> int:
    """The matrix runner on one cell, and a printer for its verdict."""
    from harness.matrix.backend import DockerBackend
    from harness.matrix.runner import ResultCache, run_matrix

    cell = parse_cell(args.cell)
    backend = DockerBackend(upstream=args.upstream, patches_dir=args.patches_dir,
                            plugin_upstream=args.plugin_upstream)
    backend.check_cell(cell)
    if isinstance(cell, Cell):  # a cell tests the release; it is not a build for use
        holes = advisories_for(cell.version, args.patches_dir)
        if holes:
            print(warning(cell.version, holes), file=sys.stderr)
    log_dir = paths.cache_dir() / "cell-logs"

    def say(kind: str, name: str, _result: CellResult | None) -> None:
        if kind == "build-start":
            print(f"building {name} ...", file=sys.stderr)
        elif kind == "cell-start":
            print(f"running {name} (log: {log_dir / f'{name}.log'}) ...", file=sys.stderr)

    outcome = run_matrix([cell], backend, jobs=1, log_dir=log_dir, on_event=say,
                         cache=None if args.no_cache else ResultCache())
    result = outcome.results[0]
    if args.log and result.log:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.log, args.log)
        result.log = str(args.log)
    _print(result)
    return outcome.exit_code


def _print(result: CellResult) -> None:
    cell = result.cell
    for line in result.checks:
        print(f"  ok  {line}")
    cached = " (cached result)" if result.cached else ""
    verdict = f"{result.outcome.upper()} {cell} in {result.duration:.1f}s{cached}"
    if result.reason:
        verdict += f": {result.reason}"
    print(verdict)
    if result.log:
        print(f"log: {result.log}")
    if result.binary:
        if isinstance(cell, RelayCell):
            what, how = "plugin", "--xoauth2-plugin"
        else:
            flag = " --sanitize" if cell.sanitizer else " --deb" if cell.packaged else ""
            what, how = "binary", f"{cell.version}{flag}"
        print(f"{what}: {result.binary}  (copy it out with `fetchmail-harness build {how} "
              f"--distro {cell.distro} --dist DIR`)")
