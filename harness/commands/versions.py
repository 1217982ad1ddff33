"""`fetchmail-harness versions`: fetchmail versions and the patch series each maps to."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.series.table import describe_coverage, markdown_table
from harness.source.mirror import FetchmailSource

NAME = "versions"
HELP = "list fetchmail versions with their patch series (or native / uncovered)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", help="git URL or path of fetchmail")
    parser.add_argument(
        "--patches-dir", type=Path, help="patch series directory (default patches/)"
    )
    parser.add_argument("--table", action="store_true",
                        help="print only the version→series table as Markdown (as in README)")


def run(args: argparse.Namespace) -> int:
    if args.table:
        print("| releases | series | max fuzz |\n|---|---|---|")
        print(markdown_table(args.patches_dir))
        return 0
    source = FetchmailSource(args.upstream)
    for version in source.versions():
        print(f"{version!s:16} {describe_coverage(version, args.patches_dir)}")
    return 0
