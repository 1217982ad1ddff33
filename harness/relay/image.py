"""The relay image per distro: Debian's postfix plus what building the XOAUTH2 plugin needs.

Tagged by content hash of containers/postfix.Dockerfile and the suite, built on fmh-base.
"""

from __future__ import annotations

from typing import Any

from harness.build import images
from harness.build.distros import Distro

DOCKERFILE = "postfix.Dockerfile"


def recipe_hash(distro: Distro) -> str:
    return images.dockerfile_hash(distro, DOCKERFILE)


def ensure_relay_image(client: Any, distro: Distro) -> tuple[str, bool]:
    """The relay image for `distro`, built when missing: (tag, built_now)."""
    image, built = images.ensure_image(client, "fmh-relay", DOCKERFILE, distro)
    return image.tag, built
