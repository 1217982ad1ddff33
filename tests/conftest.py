"""Shared fixtures: every test gets its own cache dir; the real one is read-only input.

Helpers (plain functions and classes) live in tests/helpers/, fixtures here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.source.mirror import FetchmailSource
from tests.helpers.skips import (
    FETCHMAIL_UPSTREAM,
    PLUGIN_UPSTREAM,
    docker_available,
    skip_loudly,
)
from tests.helpers.workshop import Cli, Workshop

if TYPE_CHECKING:
    import docker

    from harness.matrix.backend import DockerBackend


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for the Docker engine is a docker test, marked or not (so CI and
    `-m 'not docker'` can leave out what cannot run without one)."""
    for item in items:
        if "docker_engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(autouse=True)
def isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test touches the user's real cache: FETCHMAIL_HARNESS_CACHE points at a temp dir.

    Nor sees the caller's FETCHMAIL_UPSTREAM (tests that need a source take it from the
    `fetchmail_upstream` fixture, which read it first): a test passes whether it is set or not.
    """
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("FETCHMAIL_HARNESS_CACHE", str(cache))
    monkeypatch.delenv("FETCHMAIL_UPSTREAM", raising=False)
    return cache


@pytest.fixture(scope="session")
def fetchmail_upstream() -> str:
    """A git URL/path holding fetchmail's history, or a loud skip."""
    if FETCHMAIL_UPSTREAM is None:
        skip_loudly(
            "no fetchmail source: set FETCHMAIL_UPSTREAM or run "
            "`fetchmail-harness sources --upstream URL` once"
        )
    assert FETCHMAIL_UPSTREAM is not None
    return FETCHMAIL_UPSTREAM


@pytest.fixture(scope="session")
def plugin_upstream() -> str:
    """A git URL/path holding cyrus-sasl-xoauth2 (the XOAUTH2 plugin postfix uses), or a skip."""
    if PLUGIN_UPSTREAM is None:
        skip_loudly(
            "no cyrus-sasl-xoauth2 source: set XOAUTH2_PLUGIN_UPSTREAM or run "
            "`fetchmail-harness setup --source` once"
        )
    assert PLUGIN_UPSTREAM is not None
    return PLUGIN_UPSTREAM


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine that answers, or a loud skip."""
    if not docker_available():
        skip_loudly("no Docker engine answers (run `fetchmail-harness setup` as root)")


@pytest.fixture(scope="session")
def docker_client(docker_engine: None) -> docker.DockerClient:
    from harness.build.engine import ensure_engine

    return ensure_engine()


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> str:
    """The bookworm base image (debootstrap minbase): a plain container to work in."""
    from harness.build import images

    images.ensure_base(docker_client, "bookworm")
    return images.base_tag("bookworm")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache shared by the expensive docker-backed tests of a run (still not the real one)."""
    yield tmp_path_factory.mktemp("session-cache")


@pytest.fixture
def backend(
    docker_engine: None, fetchmail_upstream: str, session_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[DockerBackend]:
    """A matrix backend whose builds are shared by every test of the session."""
    from harness.matrix.backend import DockerBackend  # docker only for the tests that use it

    monkeypatch.setenv("FETCHMAIL_HARNESS_CACHE", str(session_cache))
    yield DockerBackend(upstream=fetchmail_upstream)


# -- a fetchmail mirror and trees ------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_source(fetchmail_upstream: str, session_cache: Path) -> FetchmailSource:
    """The upstream mirrored once into the session cache (worktrees are reused across tests)."""
    source = FetchmailSource(fetchmail_upstream, cache=session_cache)
    source.ensure_mirror()
    return source


@pytest.fixture
def tree_of(
    shared_source: FetchmailSource, tmp_path: Path
) -> Callable[[str], Path]:
    """A private, writable copy of fetchmail VERSION's tree."""

    made: list[Path] = []

    def copy(version: str) -> Path:
        src = shared_source.worktree(shared_source.resolve(version))
        dest = tmp_path / f"tree-{version}-{len(made)}"
        made.append(dest)
        shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        return dest

    return copy


# -- throwaway series and the CLI ------------------------------------------------------------


@pytest.fixture
def workshop(fetchmail_upstream: str, tmp_path: Path) -> Workshop:
    patches = tmp_path / "patches"
    patches.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return Workshop(fetchmail_upstream, scratch, patches)


@pytest.fixture
def cli(fetchmail_upstream: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    """The real `fetchmail-harness` entry point, in this process (imports cost seconds)."""
    from harness.cli import main

    monkeypatch.setenv("FETCHMAIL_UPSTREAM", fetchmail_upstream)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["fetchmail-harness", *args], code, out, err)

    return run


@pytest.fixture
def cli_subprocess(fetchmail_upstream: str, tmp_path: Path) -> Cli:
    """`python -m harness` in a subprocess, as a maintainer runs it."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, FETCHMAIL_UPSTREAM=fetchmail_upstream)
        return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=300)

    return run
