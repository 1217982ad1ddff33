"""Container images: Debian base images made offline with debootstrap, build images on top."""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from filelock import FileLock

from harness import paths
from harness.build.distros import Distro, check_distro
from harness.build.engine import apt_install
from harness.errors import EngineError

log = logging.getLogger(__name__)

MIRROR = "http://deb.debian.org/debian"
DOCKERFILE = "Dockerfile"


@dataclass(frozen=True)
class BuildImage:
    distro: Distro
    tag: str
    id: str
    content_hash: str


def base_tag(distro: Distro) -> str:
    return f"fmh-base:{distro}"


def _image(client: docker.DockerClient, tag: str) -> Any:
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def _lock(name: str) -> FileLock:
    locks = paths.cache_dir() / "locks"
    locks.mkdir(exist_ok=True)
    return FileLock(str(locks / f"{name}.lock"))


def _debootstrap(distro: Distro) -> None:
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    with tempfile.TemporaryDirectory(prefix=f"fmh-{distro}-") as root:
        log.info("debootstrap %s (minbase) into %s; this takes a few minutes", distro, root)
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", distro, root, MIRROR],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise EngineError(
                f"debootstrap {distro} failed:\n{(proc.stdout + proc.stderr)[-2000:]}"
            )
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["docker", "import", "-", base_tag(distro)],
            stdin=tar.stdout, capture_output=True, text=True,
        )
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise EngineError(f"docker import of {distro} failed: {imp.stderr.strip()}")


def ensure_base(client: docker.DockerClient, distro: Distro) -> tuple[str, bool]:
    """fmh-base:<distro> (its id), made with debootstrap when missing; (id, made_now)."""
    check_distro(distro)
    with _lock(f"base-{distro}"):
        image = _image(client, base_tag(distro))
        if image is not None:
            return str(image.id), False
        _debootstrap(distro)
        image = _image(client, base_tag(distro))
        if image is None:
            raise EngineError(f"{base_tag(distro)} is still missing after debootstrap")
        return str(image.id), True


def dockerfile_hash(distro: Distro, dockerfile: str = DOCKERFILE) -> str:
    """Content hash naming an image: its Dockerfile and the suite it is built for."""
    text = (paths.CONTAINERS_DIR / dockerfile).read_bytes()
    return hashlib.sha256(text + f"\0{distro}".encode()).hexdigest()


def ensure_build_image(client: docker.DockerClient, distro: Distro) -> tuple[BuildImage, bool]:
    """The build image for `distro` (tagged by content hash), built when missing."""
    digest = dockerfile_hash(distro)
    tag, built = ensure_image(client, distro, DOCKERFILE, "fmh-build", digest)
    return BuildImage(distro, tag, str(_image(client, tag).id), digest), built


def ensure_image(
    client: docker.DockerClient, distro: Distro, dockerfile: str, name: str, digest: str
) -> tuple[str, bool]:
    """`name:<distro>-<digest12>`, built from containers/`dockerfile` on fmh-base:<distro>
    when missing (one builder at a time): (tag, built_now)."""
    ensure_base(client, distro)
    tag = f"{name}:{distro}-{digest[:12]}"
    with _lock(f"{name}-{distro}"):
        built = _image(client, tag) is None
        if built:
            log.info("building %s from %s", tag, paths.CONTAINERS_DIR / dockerfile)
            try:
                client.images.build(
                    path=str(paths.CONTAINERS_DIR), dockerfile=dockerfile,
                    buildargs={"SUITE": distro}, tag=tag, rm=True, forcerm=True,
                )
            except docker.errors.BuildError as exc:
                lines = "".join(str(x.get("stream", "")) for x in exc.build_log)[-3000:]
                raise EngineError(f"building {tag} failed: {exc}\n{lines}") from exc
    return tag, built
