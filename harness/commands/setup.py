"""`fetchmail-harness setup`: engine, base/build/relay images, optionally the source mirrors."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from harness.build import images
from harness.build.distros import DISTROS, check_distro
from harness.build.engine import ensure_engine
from harness.build.peers import ensure_host_tools, ensure_test_peers
from harness.errors import SourceError
from harness.relay.image import ensure_relay_image
from harness.relay.plugin import PluginSource
from harness.source.mirror import FetchmailSource, remember_upstream

log = logging.getLogger(__name__)

NAME = "setup"
HELP = ("make everything builds and cells need: host tools (GNU patch, git), Docker engine, "
        "base/build/relay images, the Dovecot image (idempotent)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--distro", action="append", choices=sorted(DISTROS),
                        help="only these distros (repeatable; default all)")
    parser.add_argument("--upstream", help="also mirror fetchmail from this git URL/path")
    parser.add_argument("--source", action="store_true",
                        help="also make sure the fetchmail and cyrus-sasl-xoauth2 mirrors exist "
                        "(remembered/default upstreams); a failure is a warning, tests that "
                        "need the source then skip")
    parser.add_argument("--plugin-upstream",
                        help="git URL/path of cyrus-sasl-xoauth2 for --source (default: "
                        "$XOAUTH2_PLUGIN_UPSTREAM, else GitHub)")
    parser.add_argument("--test-peers", action="store_true",
                        help="also install the real peers tests compare against "
                        "(Debian's fetchmail, curl, dovecot, postfix's postmap, GNU patch, cron, "
                        "systemd-analyze)")
    parser.add_argument("--images-archive", type=Path, metavar="FILE",
                        help="load the images from FILE (a `docker save` archive) first, and "
                        "rewrite it when an image had to be made (for CI caches)")


def run(args: argparse.Namespace) -> int:
    installed = ensure_host_tools()
    print(f"host tools: {'installed ' + ' '.join(installed) if installed else 'present'}")
    if args.test_peers:
        installed = ensure_test_peers()
        print(f"test peers: {'installed ' + ' '.join(installed) if installed else 'present'}")
    client = ensure_engine()
    print(f"engine: Docker {client.version().get('Version', '?')} answers")
    if args.images_archive:
        images.load_archive(args.images_archive)
    tags: list[str] = []
    made_any = False
    for distro in (check_distro(d) for d in args.distro or DISTROS):
        _, made = images.ensure_base(client, distro)
        print(f"{images.base_tag(distro)}: {'made with debootstrap' if made else 'present'}")
        image, built = images.ensure_build_image(client, distro)
        print(f"{image.tag}: {'built' if built else 'present'}")
        relay, relay_built = ensure_relay_image(client, distro)  # postfix relay cells
        print(f"{relay}: {'built' if relay_built else 'present'}")
        tags += [images.base_tag(distro), image.tag, relay]
        made_any = made_any or made or built or relay_built
    server, built = images.ensure_dovecot_image(client)  # the `dovecot` server cells
    print(f"{server.tag}: {'built' if built else 'present'}")
    tags += [server.tag]
    made_any = made_any or built
    if args.images_archive and (made_any or not args.images_archive.is_file()):
        images.save_archive(tags, args.images_archive)
        print(f"images archive {args.images_archive}: written ({', '.join(tags)})")
    if args.upstream:
        remember_upstream(args.upstream)
        source = FetchmailSource(args.upstream)
        existed = source.mirror.exists()
        source.ensure_mirror()
        if existed:
            source.update()
        print(f"mirror {source.mirror}: {'refreshed' if existed else 'cloned'}")
    elif args.source:
        source = FetchmailSource()
        try:
            existed = source.mirror.exists()
            source.ensure_mirror()
            print(f"mirror {source.mirror}: {'present' if existed else 'cloned'} "
                  f"(upstream {source.upstream})")
        except SourceError as exc:
            log.warning("WARNING: no fetchmail source, tests that need it will skip: %s", exc)
    if args.source or args.plugin_upstream:
        plugin = PluginSource(args.plugin_upstream)
        try:
            existed = plugin.mirror.path.exists()
            plugin.mirror.repo()
            if existed and args.plugin_upstream:
                plugin.mirror.update()
            print(f"mirror {plugin.mirror.path}: {'present' if existed else 'cloned'} "
                  f"(upstream {plugin.upstream})")
        except SourceError as exc:
            log.warning("WARNING: no cyrus-sasl-xoauth2 source, the relay cells and tests that "
                        "need it will skip: %s", exc)
    return 0
