"""`fetchmail-harness setup`: engine, base and build images, optionally the source mirror."""

from __future__ import annotations

import argparse

from harness import images
from harness.engine import ensure_engine
from harness.sources import FetchmailSource, remember_upstream

NAME = "setup"
HELP = "make everything builds need: Docker engine, base/build images (idempotent)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--distro", action="append", choices=sorted(images.DISTROS),
                        help="only these distros (repeatable; default all)")
    parser.add_argument("--upstream", help="also mirror fetchmail from this git URL/path")


def run(args: argparse.Namespace) -> int:
    client = ensure_engine()
    print(f"engine: Docker {client.version().get('Version', '?')} answers")
    for distro in args.distro or list(images.DISTROS):
        _, made = images.ensure_base(client, distro)
        print(f"{images.base_tag(distro)}: {'made with debootstrap' if made else 'present'}")
        image, built = images.ensure_build_image(client, distro)
        print(f"{image.tag}: {'built' if built else 'present'}")
    if args.upstream:
        remember_upstream(args.upstream)
        source = FetchmailSource(args.upstream)
        existed = source.mirror.exists()
        source.ensure_mirror()
        if existed:
            source.update()
        print(f"mirror {source.mirror}: {'refreshed' if existed else 'cloned'}")
    return 0
