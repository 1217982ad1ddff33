"""`fetchmail-harness series`: keep every derived series in step with the canonical one."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import ConfigError
from harness.maint import regenerate
from harness.series.derive import parse_span
from harness.series.table import load_series

NAME = "series"
HELP = ("re-derive every line series and 3-way variant from the canonical series (after a fix "
        "there), replaying recorded conflict resolutions; or record an amendment")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    regen = sub.add_parser(
        "regenerate", help="derive every series from its parent, check every table range; "
        "stops with a worktree and instructions at a conflict nothing recorded resolves")
    mode = regen.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 if the stored series are not what "
                           "regeneration gives")
    mode.add_argument("--continue", dest="resume", action="store_true",
                      help="record the resolution made in the stopped worktree, then go on")
    mode.add_argument("--abort", action="store_true",
                      help="drop a stopped regeneration (records nothing)")
    amend = sub.add_parser(
        "amend", help="stop once PATCH is carried onto a release, to record a change that "
        "merges cleanly but does not fit there (kept as patches/LINE/amendments/)")
    amend.add_argument("line", metavar="LINE", help="the derived series, e.g. oauth63")
    amend.add_argument("patch", metavar="PATCH",
                       help="the patch (file name, or its number: 0004)")
    amend.add_argument("--onto", metavar="RELEASE|FIRST..LAST",
                       help="a release of LINE's 3way range, or a run of them that all take "
                            "the amendment (default: LINE's base)")
    for p in (regen, amend):
        p.add_argument("--patches-dir", type=Path, help="patch series dir (default patches/)")
        p.add_argument("--upstream", help="git URL or path of fetchmail")


def run(args: argparse.Namespace) -> int:
    if args.action == "amend":
        line = load_series(args.line, args.patches_dir)
        names = [p.name for p in line.patches]
        patch = next((n for n in names if n == args.patch or n.startswith(f"{args.patch}-")),
                     None)
        if patch is None:
            raise ConfigError(f"{line.name} has no patch {args.patch!r} ({', '.join(names)})")
        span = args.onto or str(line.base)
        parse_span(span)  # a clear error for a bad name
        request = regenerate.AmendRequest(line.name, span, patch)
        return regenerate.regenerate(args.patches_dir, args.upstream, amend=request)
    if args.resume:
        return regenerate.resume(args.upstream)
    if args.abort:
        return regenerate.abort()
    return regenerate.regenerate(args.patches_dir, args.upstream, check=args.check)
