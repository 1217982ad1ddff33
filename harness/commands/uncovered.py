"""`fetchmail-harness uncovered`: releases no series maps to, or whose series stopped applying."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import EXIT_FAILED
from harness.series.gaps import find_gaps, superseded
from harness.source.mirror import FetchmailSource

NAME = "uncovered"
HELP = ("list releases (6.3.0 on) that no series maps to, or whose series no longer applies "
        "within max_fuzz; exit 1 if any")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-apply-check", dest="apply_check", action="store_false",
                        help="only look at the table, do not apply the series")
    parser.add_argument("--patches-dir", type=Path,
                        help="patch series directory (default patches/)")
    parser.add_argument("--upstream", help="git URL or path of fetchmail")


def run(args: argparse.Namespace) -> int:
    source = FetchmailSource(args.upstream)
    releases, gaps = find_gaps(source, args.patches_dir, apply_check=args.apply_check)
    width = max((len(str(g.version)) for g in gaps), default=0)
    for gap in gaps:
        print(f"{gap.version!s:<{width}}  {gap.version.tag:<16} {gap.reason}")
    checked = "table and apply check" if args.apply_check else "table only"
    print(f"{len(releases) - len(gaps)} of {len(releases)} releases covered ({checked})")
    skipped = superseded(source.versions())
    if skipped:
        print(f"not counted (superseded pre-releases): {', '.join(map(str, skipped))}")
    return EXIT_FAILED if gaps else 0
