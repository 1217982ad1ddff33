"""`fetchmail-harness export`: a series as a packager takes it (quilt, Gentoo, diff, git)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.series.export import FORMATS, run_export
from harness.source.versions import Version

NAME = "export"
HELP = ("write SERIES for a release as Debian quilt patches (debian/patches + series), "
        "Gentoo user patches, one combined diff, or a git branch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("series", metavar="SERIES", help="e.g. oauth64")
    parser.add_argument("dest", metavar="DIR", type=Path,
                        help="quilt: the patches dir (debian/patches); gentoo: the portage "
                             "patches root (/etc/portage/patches); diff: where the .diff goes; "
                             "git: the fetchmail clone that gets the branch")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--version", dest="release", metavar="VERSION",
                        help="the release to export for (default: the series' base; gentoo: "
                             "given, the patches go to fetchmail-VERSION/, else fetchmail/)")
    parser.add_argument("--with-build-fixes", action="store_true",
                        help="append the build fixes the release needs (patches/build-fixes)")
    parser.add_argument("--branch", help="git: the branch name (default oauth2/SERIES-VERSION)")
    parser.add_argument("--patches-dir", type=Path, help="patch series dir (default patches/)")
    parser.add_argument("--upstream", help="git URL or path of fetchmail")


def run(args: argparse.Namespace) -> int:
    version = Version.parse(args.release) if args.release else None
    print(run_export(args.series, args.format, args.dest, version=version,
                     build_fixes=args.with_build_fixes, branch=args.branch,
                     patches_dir=args.patches_dir, upstream=args.upstream))
    return 0
