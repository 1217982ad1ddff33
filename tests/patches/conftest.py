"""Fixtures for the tests of the patched fetchmail (6.4.33 + oauth64, plain and ASan+UBSan)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.mockserver.tls import TestCA
from tests.helpers.skips import FETCHMAIL_UPSTREAM, docker_available, skip_loudly
from tests.patches.fetchmail_box import FetchmailBox

VERSION, SERIES, DISTRO = "6.4.33", "oauth64", "bookworm"


def _build(flavour: str, cache: Path) -> tuple[Path, str]:
    """(binary, image) of the harness's container build of 6.4.33 + oauth64."""
    from harness.build.builder import BuildSpec, build
    from harness.build.engine import ensure_engine
    from harness.build.images import ensure_build_image
    from harness.source.mirror import FetchmailSource
    from harness.source.versions import Version

    if FETCHMAIL_UPSTREAM is None:
        skip_loudly("no fetchmail source: set FETCHMAIL_UPSTREAM (see tests/helpers/skips.py)")
    if not docker_available():
        skip_loudly("no Docker engine to build and run fetchmail (run `fetchmail-harness setup`)")
    source = FetchmailSource(str(FETCHMAIL_UPSTREAM), cache=cache)
    spec = BuildSpec(Version.parse(VERSION), DISTRO, SERIES, sanitize=flavour == "asan")
    result = build(spec, source=source, cache=cache)
    image, _ = ensure_build_image(ensure_engine(), DISTRO)
    return result.binary, image.tag


@pytest.fixture(scope="session", params=["plain", "asan"])
def patched_fetchmail(request: pytest.FixtureRequest, session_cache: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[FetchmailBox]:
    """plain: the plain build, or a prebuilt host binary $FETCHMAIL_PATCHED_BINARY; asan:
    -fsanitize=address,undefined (any report fails a test).  See fetchmail_box."""
    prebuilt = os.environ.get("FETCHMAIL_PATCHED_BINARY")
    if request.param == "plain" and prebuilt:
        box = FetchmailBox.on_host(Path(prebuilt))
    else:
        binary, image = _build(request.param, session_cache)
        box = FetchmailBox.start(image, binary, request.param,
                                 [tmp_path_factory.getbasetemp(), binary.parent])
    try:
        version = box.version()
        assert f"This is fetchmail release {VERSION}" in version, version
        yield box
    finally:
        box.stop()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A test CA in a directory the fetchmail container sees."""
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private HOME / FETCHMAILHOME for one fetchmail run."""
    path = tmp_path / "home"
    path.mkdir()
    path.chmod(0o700)
    return path
