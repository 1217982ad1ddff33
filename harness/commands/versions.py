"""`fetchmail-harness versions`: fetchmail versions and the patch series each maps to."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.series import describe_coverage
from harness.sources import FetchmailSource

NAME = "versions"
HELP = "list fetchmail versions with their patch series (or native / uncovered)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", help="git URL or path of fetchmail")
    parser.add_argument(
        "--patches-dir", type=Path, help="patch series directory (default patches/)"
    )


def run(args: argparse.Namespace) -> int:
    source = FetchmailSource(args.upstream)
    for version in source.versions():
        print(f"{version!s:16} {describe_coverage(version, args.patches_dir)}")
    return 0
