"""The patched fetchmail as a user gets it: `build --deb` for each suite, installed with
`apt-get install ./fetchmail-oauth_….deb` in a fresh container of that suite's base image (no
build tools), run end to end from /usr/bin/fetchmail, kept by apt upgrade, removed cleanly.
(slow: a build per suite; docker; the suite's Debian mirror)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.build.builder import BuildResult, BuildSpec, build
from harness.build.container import Container
from harness.build.engine import ensure_engine
from harness.build.images import base_tag, ensure_base, ensure_build_image
from harness.build.installed import apt, install_debs, installed_image
from harness.build.package import PACKAGE, Packaged, package
from harness.cell.model import Cell
from harness.cell.run import run_cell
from harness.series.table import series_for
from harness.source.mirror import FetchmailSource
from harness.source.versions import Version
from tests.helpers.skips import skip_loudly

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.fetchmail_source]

RELEASE = "6.4.33"
SUITES = ("bookworm", "trixie", "bullseye")
NUMBERS = {"bullseye": 11, "bookworm": 12, "trixie": 13}


def _series() -> str:
    found = series_for(Version.parse(RELEASE))
    if found is None:
        skip_loudly(f"no patch series covers {RELEASE} (patches/series.toml)")
    assert found is not None
    return found[0].name


@pytest.fixture(scope="module", params=SUITES)
def packaged(request: pytest.FixtureRequest, docker_engine: None,
             shared_source: FetchmailSource, session_cache: Path
             ) -> tuple[BuildResult, Packaged]:
    suite = str(request.param)
    result = build(BuildSpec(Version.parse(RELEASE), suite, _series()), source=shared_source,
                   cache=session_cache)
    client = ensure_engine()
    image, _ = ensure_build_image(client, suite)
    return result, package(result.dist_dir, image.tag, client, cache=session_cache)


def _deb_field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True,
                          check=True).stdout.strip()


def _manifest(result: BuildResult) -> dict[str, Any]:
    return dict(json.loads((result.dist_dir / "manifest.json").read_text()))


def test_control_fields_say_what_it_is_and_what_it_needs(
    packaged: tuple[BuildResult, Packaged],
) -> None:
    result, made = packaged
    suite = result.spec.distro
    version = _deb_field(made.deb, "Version")
    assert version == f"{RELEASE}+{_series()}-1~deb{NUMBERS[suite]}.{suite}" == made.version
    assert made.deb.name == f"{PACKAGE}_{version}_amd64.deb"
    assert _deb_field(made.deb, "Package") == PACKAGE
    assert _deb_field(made.deb, "Provides") == f"fetchmail (= {RELEASE})"
    assert _deb_field(made.deb, "Conflicts") == "fetchmail"
    assert _deb_field(made.deb, "Replaces") == "fetchmail"
    ssl = _manifest(result)["libssl"]
    depends = _deb_field(made.deb, "Depends")
    # the binary refuses an older run-time OpenSSL than its headers: apt must bring this one
    assert f"{ssl['package']} (>= {ssl['version']})" in depends and "libc6 (>= " in depends


def test_deb_and_tarball_ship_the_same_stripped_tree(
    packaged: tuple[BuildResult, Packaged], tmp_path: Path,
) -> None:
    result, made = packaged
    subprocess.run(["dpkg-deb", "-x", str(made.deb), str(tmp_path / "deb")], check=True)
    (tmp_path / "tar").mkdir()
    subprocess.run(["tar", "-C", str(tmp_path / "tar"), "-xzf", str(made.tarball)], check=True)

    def files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    shipped = files(tmp_path / "deb")
    assert shipped == files(tmp_path / "tar")
    doc = f"usr/share/doc/{PACKAGE}"
    for rel in ("usr/bin/fetchmail", "usr/share/man/man1/fetchmail.1.gz",
                "usr/share/locale/de/LC_MESSAGES/fetchmail.mo", f"{doc}/README.Debian",
                f"{doc}/copyright", f"{doc}/changelog.gz", f"{doc}/manifest.json"):
        assert rel in shipped, rel
    assert not any("fetchmailconf" in rel for rel in shipped)
    binary = tmp_path / "deb/usr/bin/fetchmail"
    sections = subprocess.run(["objdump", "-h", str(binary)], capture_output=True, text=True,
                              check=True).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections
    assert binary.stat().st_size < result.binary.stat().st_size
    readme = (tmp_path / "deb" / doc / "README.Debian").read_text()
    assert f"Patch series: {_series()}" in readme
    assert all(name in readme for name in _manifest(result)["patches"])
    assert json.loads((tmp_path / "tar" / doc / "manifest.json").read_text()) == (
        _manifest(result))


def _status(box: Container, name: str) -> str:
    """dpkg's abbreviated status ("ii ", "rc "), or "" when dpkg knows nothing of it."""
    parts: list[str] = []
    code = box.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", name], stream=parts.append)
    return "".join(parts) if code == 0 else ""


@pytest.fixture
def fresh(packaged: tuple[BuildResult, Packaged]) -> Iterator[Container]:
    """A fresh container of the suite's base image, its mirror reachable."""
    client = ensure_engine()
    suite = packaged[0].spec.distro
    ensure_base(client, suite)
    with Container(client, base_tag(suite)) as box:
        if box.run(["apt-get", "-q", "update"]) != 0:
            skip_loudly(f"the {suite} mirror is not reachable from a container")
        assert box.run(["sh", "-c", "command -v gcc || command -v make"]) != 0  # no build tools
        yield box


def test_apt_installs_it_and_keeps_it_at_upgrade_and_removes_it_cleanly(
    packaged: tuple[BuildResult, Packaged], fresh: Container,
) -> None:
    _, made = packaged
    install_debs(fresh, [made.deb])
    assert f"This is fetchmail release {RELEASE}" in fresh.check(["fetchmail", "--version"])
    policy = fresh.check(["apt-cache", "policy", "fetchmail"])
    assert "Candidate: (none)" not in policy  # Debian's own fetchmail is there to upgrade to
    for command in (["apt-get", "-s", "upgrade"], ["apt", "-s", "upgrade"],
                    ["apt-get", "-s", "dist-upgrade"]):
        plan = fresh.check(command)
        assert "Inst fetchmail " not in plan and f"Remv {PACKAGE}" not in plan, (command, plan)
    files = [f for f in fresh.check(["dpkg-query", "-L", PACKAGE]).split()
             if fresh.run(["test", "-f", f]) == 0]
    assert "/usr/bin/fetchmail" in files
    apt(fresh, "remove", PACKAGE)
    assert _status(fresh, PACKAGE) == ""  # gone, not even config files left ("rc")
    left = [f for f in files if fresh.run(["test", "-e", f]) == 0]
    assert left == []


def test_it_takes_the_place_of_debians_fetchmail_and_gives_it_back(
    packaged: tuple[BuildResult, Packaged], fresh: Container,
) -> None:
    _, made = packaged
    apt(fresh, "install", "--no-install-recommends", "fetchmail")
    debian = fresh.check(["dpkg-query", "-W", "-f", "${Version}", "fetchmail"])
    output = install_debs(fresh, [made.deb])
    assert "Removing fetchmail " in output
    assert f"release {RELEASE}" in fresh.check(["fetchmail", "--version"])
    apt(fresh, "install", "--no-install-recommends", "fetchmail")  # how to go back
    assert fresh.check(["dpkg-query", "-W", "-f", "${Version}", "fetchmail"]) == debian
    assert _status(fresh, PACKAGE) == ""


@pytest.fixture(scope="module")
def installed(packaged: tuple[BuildResult, Packaged]) -> Iterator[str]:
    """An image: the base image with the .deb installed by apt (and the cells' tools)."""
    _, made = packaged
    client = ensure_engine()
    tag = installed_image(client, packaged[0].spec.distro, [made.deb])
    yield tag
    client.images.remove(tag, force=True)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_installed_fetchmail_passes_end_to_end_cells(
    packaged: tuple[BuildResult, Packaged], installed: str, tmp_path: Path, protocol: str,
    mechanism: str,
) -> None:
    cell = Cell(Version.parse(RELEASE), _series(), packaged[0].spec.distro, protocol, mechanism,
                "tls")
    result = run_cell(cell, None, installed, ensure_engine(), tmp_path / "cell.log")
    log = (tmp_path / "cell.log").read_text()
    assert result.outcome == "pass", f"{result.reason}\n{log}"
    assert "binary /usr/bin/fetchmail" in log
