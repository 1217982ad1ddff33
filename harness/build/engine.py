"""A Docker engine that answers: found, or (as root) installed and started."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
import docker.errors

from harness import paths
from harness.errors import EngineError

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
# Left behind when dockerd/containerd were killed (e.g. at the end of a CI job); a stale
# one makes the next dockerd refuse to start.
PID_FILES = ("/var/run/docker.pid", "/var/run/docker/containerd/containerd.pid")


def _client() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=600)
        # the engine's API is no web site: requests' proxy and netrc lookups in the
        # environment, made on every call, are a fifth of a cell's own CPU time
        client.api.trust_env = False
        client.ping()
        return client
    except (docker.errors.DockerException, OSError):
        return None


def apt_install(*packages: str) -> None:
    log.info("installing %s with apt-get", " ".join(packages))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
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
    deadline = time.monotonic() + START_TIMEOUT
    # A dockerd that is still starting up or shutting down: give it time before starting ours.
    while _running("dockerd") and time.monotonic() < deadline:
        client = _client()
        if client is not None:
            return client
        time.sleep(1)
    if _running("dockerd"):
        raise EngineError("a dockerd process runs but does not answer; stop it and retry")
    remove_stale_pid_files()
    log.info("starting dockerd (log: %s)", logfile)
    with logfile.open("ab") as out:
        proc = subprocess.Popen(
            ["dockerd"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        client = _client()
        if client is not None:
            return client
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace").strip().splitlines()[-3:]
            raise EngineError(
                f"dockerd exited with status {proc.returncode}: " + " / ".join(tail)
                + f" (full log: {logfile})"
            )
        time.sleep(1)
    raise EngineError(f"dockerd did not answer within {START_TIMEOUT:.0f}s; see {logfile}")


def _stat(pid: int | str) -> tuple[str, str] | None:
    """(name, state) of a process from /proc/PID/stat, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    close = text.rindex(")")
    return text[text.index("(") + 1 : close], text[close + 2 :].split()[0]


def _live(stat: tuple[str, str] | None) -> bool:
    return stat is not None and stat[1] not in ("Z", "X")  # not a zombie, not dead


def _running(name: str) -> bool:
    """A live process with this exact name."""
    return any(
        stat is not None and stat[0] == name and _live(stat)
        for stat in (_stat(entry) for entry in os.listdir("/proc") if entry.isdigit())
    )


def remove_stale_pid_files(pid_files: tuple[str, ...] = PID_FILES) -> list[str]:
    """Delete pid files whose process is gone (or a zombie); returns what was removed."""
    removed = []
    for pid_file in pid_files:
        try:
            pid = int(Path(pid_file).read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        if pid > 0 and _alive(pid):
            continue
        os.unlink(pid_file)
        log.info("removed stale %s (pid %d is gone)", pid_file, pid)
        removed.append(pid_file)
    return removed


def _alive(pid: int) -> bool:
    return _live(_stat(pid))
