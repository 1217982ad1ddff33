"""`fetchmail-harness diff`: how two patch series differ, patch by patch."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness import paths
from harness.errors import EXIT_FAILED, ConfigError
from harness.series.interdiff import compare_series, render
from harness.series.table import TABLE_FILE, Series, load_series

NAME = "diff"
HELP = ("compare two patch series patch by patch (matched by name), ignoring context and "
        "line-number churn; exit 1 if they differ")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("series_a", metavar="SERIES_A", help="series name or directory")
    parser.add_argument("series_b", metavar="SERIES_B", help="series name or directory")
    parser.add_argument("--stat", action="store_true", help="summary only, no interdiff")
    parser.add_argument("--patches-dir", type=Path,
                        help="patch series directory (default patches/)")


def _load(ref: str, patches_dir: Path | None) -> Series:
    """A series by name (in the patches dir) or by the path of its directory."""
    path = Path(ref)
    if ("/" in ref or ref.startswith(".")) and (path / TABLE_FILE).is_file():
        return load_series(path.resolve().name, path.resolve().parent)
    if "/" in ref:
        raise ConfigError(f"{ref}: not a series directory (no {TABLE_FILE} there)")
    return load_series(ref, patches_dir or paths.PATCHES_DIR)


def run(args: argparse.Namespace) -> int:
    a = _load(args.series_a, args.patches_dir)
    b = _load(args.series_b, args.patches_dir)
    diffs = compare_series(a, b)
    for line in render(a, b, diffs, args.stat):
        print(line)
    return 0 if all(d.status == "identical" for d in diffs) else EXIT_FAILED
