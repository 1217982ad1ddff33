"""`fetchmail-harness rebase`: carry a patch series to a new fetchmail release."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.build.distros import parse_distros
from harness.errors import ConfigError
from harness.maint import rebase

NAME = "rebase"
HELP = ("carry the closest patch series onto a new release (three-way merges), export it as a "
        "regenerated series and map the release to it")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--onto", metavar="TAG",
                      help="target release, e.g. 6.4.34 or RELEASE_6-4-34; or FIRST..LAST "
                           "(FIRST.. = to the newest) to carry release after release")
    what.add_argument("--continue", dest="resume", action="store_true",
                      help="go on after resolving a conflict (`git add` the files first)")
    what.add_argument("--abort", action="store_true",
                      help="drop a rebase in progress and its worktree")
    parser.add_argument("--from", dest="from_series", metavar="SERIES",
                        help="series to carry over (default: the one whose base is closest)")
    parser.add_argument("--name", metavar="NEW",
                        help="name of the regenerated series (default SERIES_TAG); with "
                             "--continue/--abort: which rebase")
    parser.add_argument("--no-test", dest="test", action="store_false", default=None,
                        help="skip building and running the end-to-end cells")
    parser.add_argument("--regenerate", action="store_true",
                        help="make a fresh series even if the old one still applies")
    parser.add_argument("--distros", default="bookworm",
                        help="distros for the end-to-end cells (comma-separated; default "
                             "bookworm)")
    parser.add_argument("--patches-dir", type=Path,
                        help="patch series directory (default patches/)")
    parser.add_argument("--upstream", help="git URL or path of fetchmail")


def run(args: argparse.Namespace) -> int:
    if args.resume:
        return rebase.resume(args.name, args.test)
    if args.abort:
        return rebase.abort(args.name)
    distros = parse_distros(args.distros)
    opts = rebase.Options(test=args.test is not False, regenerate=args.regenerate,
                          distros=distros, patches_dir=args.patches_dir, upstream=args.upstream)
    if ".." in args.onto:
        if args.name:
            raise ConfigError("--name names one new series: not with a range of releases")
        return rebase.start_range(args.onto, args.from_series, opts)
    return rebase.start(args.onto, args.from_series, args.name, opts)
