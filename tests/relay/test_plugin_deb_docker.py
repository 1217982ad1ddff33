"""The XOAUTH2 plugin as a user gets it: `build --xoauth2-plugin --deb`, installed with
`apt-get install ./libsasl2-modules-xoauth2-moriyoshi_….deb` in a fresh bookworm base container,
seen by libsasl2 (saslpluginviewer -c), removed cleanly. (docker; the suite's Debian mirror)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.build.container import Container
from harness.build.engine import ensure_engine
from harness.build.images import base_tag, ensure_base
from harness.build.installed import apt, install_debs
from harness.cli import main
from harness.relay.plugin import PluginBuild, PluginSource
from harness.relay.plugin_deb import PACKAGE, upstream_version
from tests.helpers.skips import skip_loudly

pytestmark = [pytest.mark.docker]


def _field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def deb(relay_plugin: PluginBuild, plugin_upstream: str, session_cache: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    monkeypatch.setenv("FETCHMAIL_HARNESS_CACHE", str(session_cache))
    code = main(["build", "--xoauth2-plugin", "--deb", "--distro", "bookworm",
                 "--plugin-upstream", plugin_upstream, "--dist", str(tmp_path), "-q"])
    out = capsys.readouterr().out
    assert code == 0, out
    found = sorted(tmp_path.glob(f"{PACKAGE}_*_amd64.deb"))
    assert len(found) == 1 and f"deb:     {found[0]}" in out, out
    return found[0]


def test_the_deb_says_what_it_is(deb: Path, relay_plugin: PluginBuild,
                                 plugin_upstream: str) -> None:
    version = upstream_version(PluginSource(plugin_upstream), relay_plugin.commit)
    assert version.endswith(f".g{relay_plugin.commit[:7]}")
    assert _field(deb, "Version") == f"{version}-1~deb12.bookworm"
    assert _field(deb, "Conflicts") == "libsasl2-modules-kdexoauth2"
    depends = _field(deb, "Depends")
    assert "libc6 (>= " in depends and "libsasl2-2 (>= 2.1.28)" in depends


def test_apt_installs_it_libsasl2_lists_xoauth2_and_apt_removes_it(deb: Path) -> None:
    client = ensure_engine()
    ensure_base(client, "bookworm")
    with Container(client, base_tag("bookworm")) as box:
        if box.run(["apt-get", "-q", "update"]) != 0:
            skip_loudly("the bookworm mirror is not reachable from a container")
        apt(box, "install", "--no-install-recommends", "sasl2-bin")  # saslpluginviewer
        assert "XOAUTH2" not in box.check(["saslpluginviewer", "-c"])
        install_debs(box, [deb])
        files = box.check(["dpkg-query", "-L", PACKAGE]).split()
        assert "/usr/lib/x86_64-linux-gnu/sasl2/libxoauth2.so" in files
        assert f"/usr/share/doc/{PACKAGE}/copyright" in files
        assert "SASL mechanism: XOAUTH2" in box.check(["saslpluginviewer", "-c"])
        apt(box, "remove", PACKAGE)
        assert box.run(["dpkg-query", "-W", PACKAGE]) != 0  # gone, no config files left
        assert [f for f in files if f.endswith((".so", "copyright"))
                and box.run(["test", "-e", f]) == 0] == []
        assert "XOAUTH2" not in box.check(["saslpluginviewer", "-c"])
