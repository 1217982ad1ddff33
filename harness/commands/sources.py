"""`fetchmail-harness sources`: mirror (or refresh) the fetchmail upstream into the cache."""

from __future__ import annotations

import argparse

from harness.source.mirror import FetchmailSource, remember_upstream

NAME = "sources"
HELP = "mirror or refresh fetchmail's git history (--upstream URL/path is remembered)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", help="git URL or path of fetchmail (remembered in the cache)")
    parser.add_argument("--no-fetch", action="store_true", help="do not refresh an existing mirror")


def run(args: argparse.Namespace) -> int:
    if args.upstream:
        remember_upstream(args.upstream)
    source = FetchmailSource(args.upstream)
    existed = source.mirror.exists()
    source.ensure_mirror()
    refreshed = False if args.no_fetch or not existed else source.update()
    versions = source.versions()
    state = "cloned" if not existed else ("refreshed" if refreshed else "used as is")
    print(f"mirror {source.mirror} ({state}) from {source.upstream}")
    if versions:
        print(f"{len(versions)} versions: {versions[0]} .. {versions[-1]}")
    return 0
