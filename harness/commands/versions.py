"""`fetchmail-harness versions`: fetchmail versions, the patch series each maps to, and how."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.series.advisories import ALLOW_FLAG, advisories_for, short_note
from harness.series.table import entry_for, markdown_table
from harness.source.mirror import FetchmailSource

NAME = "versions"
HELP = ("list fetchmail versions with their patch series (or native / uncovered), how it "
        "applies (fuzz0 / 3way), and known security holes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", help="git URL or path of fetchmail")
    parser.add_argument(
        "--patches-dir", type=Path, help="patch series directory (default patches/)"
    )
    parser.add_argument("--table", action="store_true",
                        help="print only the version→series table as Markdown (as in README)")


def run(args: argparse.Namespace) -> int:
    if args.table:
        print("| releases | series | applied by |\n|---|---|---|")
        print(markdown_table(args.patches_dir))
        return 0
    source = FetchmailSource(args.upstream)
    insecure = 0
    for version in source.versions():
        entry = entry_for(version, args.patches_dir)
        if version.branch:
            series, how = "native", "-"
        else:
            series, how = (entry.series, entry.apply) if entry else ("uncovered", "-")
        note = short_note(advisories_for(version, args.patches_dir))
        insecure += bool(note)
        print(f"{version!s:16} {series:14} {how:6} {note}".rstrip())
    if insecure:
        print(f"WARNING: {insecure} of these releases have known security holes (INSECURE): "
              "do not use them to send bearer tokens; `build` makes one only with "
              f"{ALLOW_FLAG} (patches/series.toml lists the advisories)")
    return 0
