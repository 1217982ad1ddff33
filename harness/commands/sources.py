"""`fetchmail-harness sources`: mirror (or refresh) the fetchmail upstream into the cache, and
with --plugin-upstream the XOAUTH2 plugin postfix relays with (cyrus-sasl-xoauth2)."""

from __future__ import annotations

import argparse

from harness.source.mirror import FetchmailSource, remember_upstream

NAME = "sources"
HELP = "mirror or refresh fetchmail's git history (--upstream URL/path is remembered)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", help="git URL or path of fetchmail (remembered in the cache)")
    parser.add_argument("--no-fetch", action="store_true", help="do not refresh an existing mirror")
    parser.add_argument("--plugin-upstream", metavar="URL",
                        help="also mirror cyrus-sasl-xoauth2 from this git URL or path (the "
                        "relay cells' plugin; otherwise $XOAUTH2_PLUGIN_UPSTREAM or GitHub)")


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
    if args.plugin_upstream:
        from harness.relay.plugin import PluginSource

        plugin = PluginSource(args.plugin_upstream)
        existed = plugin.mirror.path.exists()
        plugin.mirror.repo()
        refreshed = False if args.no_fetch or not existed else plugin.mirror.update()
        state = "cloned" if not existed else ("refreshed" if refreshed else "used as is")
        print(f"mirror {plugin.mirror.path} ({state}) from {plugin.upstream}; "
              f"plugin commit {plugin.commit()[:12]}")
    return 0
