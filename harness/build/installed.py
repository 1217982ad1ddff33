"""Packages installed the way a user installs them: `apt-get install ./x.deb` in a fresh
container of the suite's base image (no build tools), and images made from that.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import docker
import docker.errors
from filelock import FileLock

from harness import paths
from harness.build.container import CommandFailed, Container
from harness.build.distros import Distro
from harness.build.images import base_tag, ensure_base
from harness.errors import BuildError, EngineError

log = logging.getLogger(__name__)

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
INBOX = "/tmp/debs"  # where the .deb files are put in the container
# what the end-to-end cells need besides fetchmail: pidof (procps), openssl rehash (old 6.3)
CELL_TOOLS = ("procps", "openssl")


def apt(box: Container, *args: str) -> str:
    """`apt-get -y ARGS` in `box`; its output, or EngineError with the output's tail."""
    try:
        return box.check(["apt-get", "-y", "-q", *args], env=APT_ENV)
    except CommandFailed as exc:
        raise EngineError(f"apt-get {' '.join(args)} failed ({exc.returncode}):\n"
                          f"{exc.output[-2000:]}") from exc


# apt's words for a mirror it could not reach (infrastructure, not the package's fault)
_UNREACHABLE = ("Failed to fetch", "Temporary failure resolving", "Could not connect",
                "Unable to fetch some archives")


def install_debs(box: Container, debs: Sequence[Path]) -> str:
    """`apt-get install ./x.deb ...` (dependencies from the suite's mirror); apt's output.

    BuildError when apt refuses the packages (e.g. a Depends the suite cannot satisfy),
    EngineError when the mirror cannot be reached.
    """
    for deb in debs:
        box.put(deb, f"{INBOX}/{deb.name}")
    apt(box, "update")
    try:
        return box.check(["apt-get", "-y", "-q", "install", "--no-install-recommends",
                          *(f"{INBOX}/{deb.name}" for deb in debs)], env=APT_ENV)
    except CommandFailed as exc:
        error = EngineError if any(w in exc.output for w in _UNREACHABLE) else BuildError
        raise error(f"apt-get install {' '.join(d.name for d in debs)} failed "
                    f"({exc.returncode}):\n{exc.output[-2000:]}") from exc


def _tag(distro: str, debs: Sequence[Path], tools: Sequence[str]) -> str:
    h = hashlib.sha256(distro.encode())
    for deb in debs:
        h.update(deb.name.encode() + b"\0" + deb.read_bytes())
    h.update("\0".join(tools).encode())
    return f"fmh-installed:{distro}-{h.hexdigest()[:12]}"


def installed_image(client: docker.DockerClient, distro: Distro, debs: Sequence[Path],
                    tools: Sequence[str] = CELL_TOOLS) -> str:
    """fmh-base:<distro> with `debs` installed by apt (then `tools`), committed as an image.

    Tagged by the packages' content, so it is made once per package; returns the tag.
    """
    tag = _tag(distro, debs, tools)
    locks = paths.cache_dir() / "locks"
    locks.mkdir(exist_ok=True)
    with FileLock(str(locks / f"{tag.replace(':', '-')}.lock")):
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        ensure_base(client, distro)
        log.info("installing %s into %s", ", ".join(d.name for d in debs), base_tag(distro))
        with Container(client, base_tag(distro)) as box:
            install_debs(box, debs)
            if tools:
                apt(box, "install", "--no-install-recommends", *tools)
            apt(box, "clean")
            repository, _, version = tag.partition(":")
            client.api.commit(box.id, repository=repository, tag=version)
    return tag
