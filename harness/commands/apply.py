"""`fetchmail-harness apply`: apply a version's patch series and report each patch."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from harness.errors import ConfigError, PatchError
from harness.series.apply import apply_plan, plan_apply
from harness.series.table import entry_for
from harness.source.mirror import FetchmailSource

NAME = "apply"
HELP = ("apply the patch series for VERSION (as the table says: fuzz 0, or the 3-way variant "
        "derived for it) to a fresh tree and report clean/offset/fuzz/failed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", help="fetchmail version, e.g. 6.4.33")
    parser.add_argument("--series", help="series to apply (default: from patches/series.toml)")
    parser.add_argument("--build-fixes", action="store_true",
                        help="also apply the build fixes the release needs (patches/build-fixes)")
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
    plan = plan_apply(version, name, source, args.patches_dir)
    if args.into and args.into.exists():
        raise ConfigError(f"{args.into} exists; --into wants a new directory")
    with tempfile.TemporaryDirectory(prefix="fmh-apply-") as tmp:
        tree = args.into or Path(tmp) / "tree"
        shutil.copytree(source.worktree(version), tree, symlinks=True,
                        ignore=shutil.ignore_patterns(".git"))
        try:
            reports = apply_plan(plan, version, tree, fixes=args.build_fixes)
        except PatchError as exc:
            print(exc)
            return PatchError.exit_code
    print(plan.describe(version))
    for report in reports:
        print(report.render())
    if not args.build_fixes and plan.fixes:
        print(f"build fixes this release needs (not applied; --build-fixes): "
              f"{', '.join(f.patch.name for f in plan.fixes)}")
    return 0
