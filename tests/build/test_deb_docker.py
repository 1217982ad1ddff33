"""harness.deb for real: a small OpenSSL program packaged in the build image, then installed,
upgraded and removed with apt in a fresh base container (docker; the suite's mirror)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.build.container import Container
from harness.build.deb import DebResult, DebSpec, build_deb, multiarch, stage_tree, tar_tree
from harness.build.engine import ensure_engine
from harness.build.images import base_tag, ensure_base, ensure_build_image
from harness.build.installed import apt, install_debs
from tests.helpers.skips import skip_loudly

pytestmark = [pytest.mark.slow, pytest.mark.docker]

DISTRO = "bookworm"
PROGRAM = r"""#include <openssl/ssl.h>
#include <stdio.h>
int main(void) { printf("demo %lx\n", (unsigned long)OpenSSL_version_num()); return 0; }
"""


def _spec(package: str, version: str, **extra: object) -> DebSpec:
    return DebSpec(package=package, version=version, summary="demo", description="A demo.",
                   maintainer="Test <test@example.org>", **extra)  # type: ignore[arg-type]


PLUGIN = r"""#include <openssl/sha.h>
unsigned char *demo_digest(const unsigned char *d, unsigned long n, unsigned char *md)
{ return SHA256(d, n, md); }
"""


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory, docker_engine: None
             ) -> Iterator[tuple[DebResult, Path, str]]:
    """fmh-demo-tool: a program (unstripped, -g) in /usr/bin and a plugin-like shared object
    with its symlink (as a SASL plugin package has them), staged from a DESTDIR tree."""
    client = ensure_engine()
    image, _ = ensure_build_image(client, DISTRO)
    tmp = tmp_path_factory.mktemp("demo")
    (tmp / "src").mkdir()
    (tmp / "src/demo.c").write_text(PROGRAM)
    (tmp / "src/plugin.c").write_text(PLUGIN)
    with Container(client, image.tag, network_mode="none") as box:
        triplet = multiarch(box)
        lib = f"/dest/usr/lib/{triplet}/demo"
        box.put(tmp / "src", "/src")
        box.check(["sh", "-c", f"mkdir -p /dest/usr/bin {lib} && "
                   "gcc -g -O2 -o /dest/usr/bin/demo-tool /src/demo.c -lssl -lcrypto && "
                   f"gcc -g -O2 -shared -fPIC -o {lib}/libdemo.so.0.0.0 /src/plugin.c -lcrypto "
                   f"&& ln -s libdemo.so.0.0.0 {lib}/libdemo.so"])
        box.get("/dest", tmp / "destdir")
        staged = stage_tree(tmp / "destdir", tmp / "tree",
                            ["usr/bin/demo-tool", f"usr/lib/{triplet}/demo/libdemo.so*"])
        assert staged == ["usr/bin/demo-tool", f"usr/lib/{triplet}/demo/libdemo.so",
                          f"usr/lib/{triplet}/demo/libdemo.so.0.0.0"]
        ssl = box.check(["dpkg-query", "-W", "-f", "${Version}", "libssl3"]).split("-")[0]
        result = build_deb(box, _spec("fmh-demo-tool", "1.0-1", at_least={"libssl3": ssl}),
                           tmp / "tree", tmp / "out")
        tarball = tar_tree(box, "fmh-demo-tool", tmp / "out", "demo.tar.gz")
    yield result, tarball, ssl


def _listing(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                          check=True).stdout


def test_shared_objects_are_stripped_and_symlinks_stay_links(
    packaged: tuple[DebResult, Path, str], tmp_path: Path,
) -> None:
    result, _, _ = packaged
    assert "libdemo.so -> libdemo.so.0.0.0" in _listing(result.deb)
    subprocess.run(["dpkg-deb", "-x", str(result.deb), str(tmp_path / "x")], check=True)
    plugin = next((tmp_path / "x").rglob("libdemo.so.0.0.0"))
    symbols = subprocess.run(["objdump", "-h", str(plugin)], capture_output=True, text=True,
                             check=True).stdout
    assert ".symtab" not in symbols and ".debug_info" not in symbols
    dynamic = subprocess.run(["objdump", "-T", str(plugin)], capture_output=True, text=True,
                             check=True).stdout
    assert "demo_digest" in dynamic  # the exported symbol survives --strip-unneeded
    subprocess.run(["dpkg-deb", "-e", str(result.deb), str(tmp_path / "ctl")], check=True)
    sums = (tmp_path / "ctl/md5sums").read_text()
    assert "libdemo.so.0.0.0" in sums and "libdemo.so\n" not in sums  # files, not links


def test_depends_come_from_the_binary_raised_to_the_build_images_libssl(
    packaged: tuple[DebResult, Path, str],
) -> None:
    result, _, ssl = packaged
    assert result.deb.name == "fmh-demo-tool_1.0-1_amd64.deb"
    assert "libc6 (>= " in result.depends  # dpkg-shlibdeps, not a fixed list
    assert f"libssl3 (>= {ssl})" in result.depends
    info = subprocess.run(["dpkg-deb", "-f", str(result.deb), "Depends", "Package"],
                          capture_output=True, text=True, check=True).stdout
    assert result.depends in info and "fmh-demo-tool" in info


def test_binary_is_stripped_and_tarball_has_the_same_tree(
    packaged: tuple[DebResult, Path, str], tmp_path: Path,
) -> None:
    result, tarball, _ = packaged
    subprocess.run(["dpkg-deb", "-x", str(result.deb), str(tmp_path / "x")], check=True)
    sections = subprocess.run(["objdump", "-h", str(tmp_path / "x/usr/bin/demo-tool")],
                              capture_output=True, text=True, check=True).stdout
    assert ".debug_info" not in sections and ".symtab" not in sections
    listing = subprocess.run(["tar", "-tzvf", str(tarball)], capture_output=True, text=True,
                             check=True).stdout
    assert "./usr/bin/demo-tool" in listing and "DEBIAN" not in listing
    assert " root/root " in listing or " 0/0 " in listing


@pytest.fixture
def fresh(docker_engine: None) -> Iterator[Container]:
    """A container of the suite's base image (no build tools), with the mirror reachable."""
    client = ensure_engine()
    ensure_base(client, DISTRO)
    with Container(client, base_tag(DISTRO)) as box:
        if box.run(["apt-get", "-q", "update"]) != 0:
            skip_loudly(f"the {DISTRO} mirror is not reachable from a container")
        yield box


def test_apt_installs_it_with_its_libssl_and_removes_it_cleanly(
    packaged: tuple[DebResult, Path, str], fresh: Container,
) -> None:
    result, _, _ = packaged
    assert fresh.run(["dpkg", "-s", "libssl3"]) != 0  # the base image has no libssl3
    output = install_debs(fresh, [result.deb])
    assert "Setting up libssl3" in output  # apt pulled it, from Depends
    assert fresh.check(["demo-tool"]).startswith("demo 30")
    apt(fresh, "remove", "fmh-demo-tool")
    assert fresh.run(["test", "-e", "/usr/bin/demo-tool"]) != 0
    assert fresh.run(["dpkg", "-s", "fmh-demo-tool"]) != 0


def test_a_same_named_older_package_is_what_apt_upgrade_replaces(
    packaged: tuple[DebResult, Path, str], fresh: Container, tmp_path: Path,
) -> None:
    """The control experiment for the fetchmail package's test: were it named `fetchmail`,
    apt would replace it with Debian's newer one at the next upgrade. So that check can fail."""
    client = ensure_engine()
    image, _ = ensure_build_image(client, DISTRO)
    tree = tmp_path / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    with Container(client, image.tag, network_mode="none") as box:
        box.put(Path(packaged[0].deb), "/tmp/demo.deb")
        box.check(["dpkg-deb", "-x", "/tmp/demo.deb", "/tmp/x"])
        box.get("/tmp/x/usr/bin/demo-tool", tree / "usr/bin/fetchmail")
        impostor = build_deb(box, _spec("fetchmail", "6.4.33-0"), tree, tmp_path / "out")
    install_debs(fresh, [impostor.deb])
    # `apt upgrade` installs the new dependencies Debian's fetchmail has; `apt-get upgrade`
    # only keeps it back for them
    for command in (["apt", "-s", "upgrade"], ["apt-get", "-s", "dist-upgrade"]):
        assert "Inst fetchmail [6.4.33-0]" in fresh.check(command), command
    assert "kept back" in fresh.check(["apt-get", "-s", "upgrade"])
