"""`fetchmail-harness run CELL_ID`: one matrix cell end to end (building first if needed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import paths
from harness.errors import CellFailure, HarnessError
from harness.matrix.kinds import parse_cell
from harness.relay.cell import RelayCell

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
    from harness.matrix.backend import DockerBackend
    from harness.matrix.runner import ResultCache, result_key

    cell = parse_cell(args.cell)
    backend = DockerBackend(upstream=args.upstream, patches_dir=args.patches_dir,
                            plugin_upstream=args.plugin_upstream)
    backend.check_cell(cell)
    cache = ResultCache()
    key = result_key(cell, backend.build_key(cell))
    result = None if args.no_cache else cache.get(key)
    if result is None:
        print(f"building {cell.build_group} ...", file=sys.stderr)
        built = backend.build(cell)
        log_path: Path = args.log or paths.cache_dir() / "cell-logs" / f"{cell.identifier}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"running {cell.identifier} (log: {log_path}) ...", file=sys.stderr)
        try:
            result = backend.run(cell, built, log_path)
        except HarnessError as exc:
            from harness.cell.result import CellResult

            result = CellResult(cell.identifier, "error", str(exc), log=str(log_path))
        result.key, result.build_key, result.binary = key, built.key, str(built.binary)
        result = cache.put(result)
    for line in result.checks:
        print(f"  ok  {line}")
    cached = " (cached result)" if result.cached else ""
    verdict = f"{result.outcome.upper()} {cell.identifier} in {result.duration:.1f}s{cached}"
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
    if result.outcome == "fail":
        return CellFailure.exit_code
    if result.outcome == "error":
        return HarnessError.exit_code
    return 0
