"""A Docker engine that answers: found, or (as root) installed and started."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time

import docker
import docker.errors

from harness import paths
from harness.errors import EngineError

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0


def _client() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=600)
        client.ping()
        return client
    except (docker.errors.DockerException, OSError):
        return None


def apt_install(*packages: str) -> None:
    log.info("installing %s with apt-get", " ".join(packages))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise EngineError(
            f"apt-get install {' '.join(packages)} failed:\n{proc.stderr.strip()[-2000:]}"
        )


def ensure_engine() -> docker.DockerClient:
    """A client for an engine that answers; as root, install/start dockerd when there is none."""
    client = _client()
    if client is not None:
        return client
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker engine answers. Start one (e.g. `sudo systemctl start docker`), or run "
            "`fetchmail-harness setup` as root to install and start it; set DOCKER_HOST for a "
            "remote engine."
        )
    if shutil.which("dockerd") is None:
        apt_install("docker.io")
    logfile = paths.cache_dir() / "dockerd.log"
    log.info("starting dockerd (log: %s)", logfile)
    with logfile.open("ab") as out:
        subprocess.Popen(
            ["dockerd"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        client = _client()
        if client is not None:
            return client
        time.sleep(1)
    raise EngineError(f"dockerd did not answer within {START_TIMEOUT:.0f}s; see {logfile}")
