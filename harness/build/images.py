"""Container images: Debian base images made offline with debootstrap, build images on top."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
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
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DOCKERFILE = "Dockerfile"
DOVECOT_DOCKERFILE = "dovecot.Dockerfile"
DOVECOT_SUITE: Distro = "bookworm"  # Dovecot 2.3 (trixie has 2.4, whose configuration differs)


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


def debootstrap_command(distro: str, root: str) -> list[str]:
    """debootstrap that checks the Release signature against Debian's keyring, or fails."""
    return ["debootstrap", "--variant=minbase", f"--keyring={KEYRING}", "--force-check-gpg",
            distro, root, MIRROR]


def check_verified(distro: str, output: str) -> None:
    """EngineError when debootstrap went on without checking what it downloaded."""
    unverified = [ln for ln in output.splitlines() if "Cannot check Release signature" in ln]
    if unverified:
        raise EngineError(f"debootstrap {distro} was not verified ({unverified[0].strip()}): "
                          f"install debian-archive-keyring ({KEYRING})")


def _debootstrap(distro: Distro) -> None:
    present = {"debootstrap": shutil.which("debootstrap") is not None,
               "debian-archive-keyring": os.path.exists(KEYRING)}
    missing = [pkg for pkg, there in present.items() if not there]
    if missing:
        apt_install(*missing)
    with tempfile.TemporaryDirectory(prefix=f"fmh-{distro}-") as root:
        log.info("debootstrap %s (minbase) into %s; this takes a few minutes", distro, root)
        proc = subprocess.run(debootstrap_command(distro, root), capture_output=True, text=True)
        if proc.returncode != 0:
            raise EngineError(
                f"debootstrap {distro} failed:\n{(proc.stdout + proc.stderr)[-2000:]}"
            )
        check_verified(distro, proc.stdout + proc.stderr)
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
    return ensure_image(client, "fmh-build", DOCKERFILE, distro)


def ensure_dovecot_image(client: docker.DockerClient) -> tuple[BuildImage, bool]:
    """Debian's Dovecot 2.3 (DOVECOT_SUITE) for the `dovecot` server cells, built when missing."""
    return ensure_image(client, "fmh-dovecot", DOVECOT_DOCKERFILE, DOVECOT_SUITE)


def ensure_image(client: docker.DockerClient, repository: str, dockerfile: str,
                 distro: Distro) -> tuple[BuildImage, bool]:
    """`repository:<distro>-<digest12>`, built from containers/`dockerfile` on fmh-base:<distro>
    when missing (one builder at a time): (image, built_now)."""
    ensure_base(client, distro)
    digest = dockerfile_hash(distro, dockerfile)
    tag = f"{repository}:{distro}-{digest[:12]}"
    with _lock(f"{repository}-{distro}"):
        image = _image(client, tag)
        built = False
        if image is None:
            log.info("building %s from %s", tag, paths.CONTAINERS_DIR / dockerfile)
            try:
                image, _logs = client.images.build(
                    path=str(paths.CONTAINERS_DIR), dockerfile=dockerfile,
                    buildargs={"SUITE": distro}, tag=tag, rm=True, forcerm=True,
                )
            except docker.errors.BuildError as exc:
                lines = "".join(str(x.get("stream", "")) for x in exc.build_log)[-3000:]
                raise EngineError(f"building {tag} failed: {exc}\n{lines}") from exc
            built = True
        return BuildImage(distro, tag, str(image.id), digest), built


def load_archive(archive: Path) -> None:
    """`docker load` an archive save_archive wrote (a missing one is no error: nothing yet)."""
    if not archive.is_file():
        return
    proc = subprocess.run(["docker", "load", "-i", str(archive)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise EngineError(f"docker load -i {archive} failed: {proc.stderr.strip()[-500:]} "
                          "(remove the archive and run setup again)")


def save_archive(tags: list[str], archive: Path) -> None:
    """The images `tags` in one `docker save` archive, written atomically, readable by all
    (CI caches it as another user than the one who made it)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(f".{archive.name}.tmp")
    proc = subprocess.run(["docker", "save", "-o", str(tmp), *tags], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise EngineError(f"docker save of {' '.join(tags)} failed: {proc.stderr.strip()}")
    tmp.chmod(0o644)
    os.replace(tmp, archive)
