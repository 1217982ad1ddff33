"""`fetchmail-harness apply`: apply a version's patch series and report each patch."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from harness.errors import ConfigError, PatchError
from harness.series.apply import apply_series
from harness.series.table import entry_for, load_series
from harness.source.mirror import FetchmailSource

NAME = "apply"
HELP = "apply the patch series for VERSION to a fresh tree and report clean/offset/fuzz/failed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", help="fetchmail version, e.g. 6.4.33")
    parser.add_argument("--series", help="series to apply (default: from patches/series.toml)")
    parser.add_argument(
        "--patches-dir", type=Path, help="patch series directory (default patches/)"
    )
    parser.add_argument("--into", type=Path, help="keep the patched tree here (must not exist)")
    parser.add_argument("--upstream", help="git URL or path of fetchmail")


def run(args: argparse.Namespace) -> int:
    source = FetchmailSource(args.upstream)
    version = source.resolve(args.version)
    entry = entry_for(version, args.patches_dir)
    name = args.series or (entry.series if entry else None)
    if name is None:
        what = "has native OAuth" if version.branch else "is not covered by patches/series.toml"
        raise ConfigError(f"fetchmail {version} {what}; name one with --series")
    series = load_series(name, args.patches_dir)
    max_fuzz = entry.max_fuzz if entry and entry.series == name else None
    tree = source.worktree(version)
    if args.into:
        if args.into.exists():
            raise ConfigError(f"{args.into} exists; --into wants a new directory")
        shutil.copytree(tree, args.into, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        report = apply_series(series, args.into, max_fuzz=max_fuzz)
    else:
        report = apply_series(series, tree, max_fuzz=max_fuzz, dry_run=True)
    print(report.render())
    return 0 if report.ok else PatchError.exit_code
