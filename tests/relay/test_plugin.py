"""The XOAUTH2 client plugin: mirrored from its git source, built per distro, cached, exported."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import ConfigError, SourceError
from harness.relay import plugin
from harness.relay.plugin import PluginBuild, PluginSource, build_plugin, export_plugin


class _NoEngine:
    """A docker client stand-in that fails the test if anything touches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was used ({name}) for a build that should be cached")


def test_upstream_is_the_option_else_the_environment_else_github(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(plugin.UPSTREAM_ENV, raising=False)
    assert plugin.configured_upstream() == plugin.DEFAULT_UPSTREAM
    monkeypatch.setenv(plugin.UPSTREAM_ENV, "/srv/xoauth2.git")
    assert plugin.configured_upstream() == "/srv/xoauth2.git"
    assert plugin.configured_upstream("/elsewhere.git") == "/elsewhere.git"


def test_source_mirrors_into_the_cache_and_resolves_refs(
    plugin_upstream: str, isolated_cache: Path
) -> None:
    source = PluginSource(plugin_upstream)
    head = source.commit()
    assert source.mirror.path == isolated_cache / "source" / "cyrus-sasl-xoauth2.git"
    assert (source.mirror.path / "HEAD").is_file()
    want = subprocess.run(["git", "-C", plugin_upstream, "rev-parse", "HEAD^{commit}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert head == want
    with pytest.raises(ConfigError, match="no 'no-such-ref'"):
        source.commit("no-such-ref")


def test_an_unreachable_upstream_says_how_to_point_elsewhere(tmp_path: Path) -> None:
    source = PluginSource(str(tmp_path / "missing.git"))
    with pytest.raises(SourceError, match="XOAUTH2_PLUGIN_UPSTREAM"):
        source.commit()


@pytest.fixture
def built(relay_plugin: PluginBuild) -> PluginBuild:
    return relay_plugin


@pytest.mark.docker
def test_build_registers_xoauth2_and_is_served_from_the_cache(
    built: PluginBuild, plugin_upstream: str, session_cache: Path
) -> None:
    assert built.plugin.read_bytes()[:4] == b"\x7fELF"
    manifest = json.loads((built.dist_dir / "manifest.json").read_text())
    assert manifest["commit"] == built.commit and manifest["distro"] == "bookworm"
    assert manifest["libsasl2"].startswith("2.1.28")
    assert "SASL mechanism: XOAUTH2" in built.log.read_text()
    again = build_plugin("bookworm", source=PluginSource(plugin_upstream, cache=session_cache),
                         cache=session_cache, client=_NoEngine())
    assert again.cached and again.dist_dir == built.dist_dir and again.key == built.key


@pytest.mark.docker
def test_export_and_the_build_command(
    built: PluginBuild, plugin_upstream: str, session_cache: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    target = export_plugin(built, tmp_path / "dist")
    assert (target / plugin.PLUGIN_FILE).read_bytes() == built.plugin.read_bytes()
    monkeypatch.setenv("FETCHMAIL_HARNESS_CACHE", str(session_cache))
    code = main(["build", "--xoauth2-plugin", "--distro", "bookworm", "--plugin-upstream",
                 plugin_upstream, "--dist", str(tmp_path / "cli"), "-q"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{built.identifier}: cached" in out
    assert (tmp_path / "cli" / built.identifier / plugin.PLUGIN_FILE).is_file()
    assert main(["build", "6.4.33", "--xoauth2-plugin"]) == 2


def test_sources_mirrors_the_plugin_too(
    plugin_upstream: str, fetchmail_upstream: str, isolated_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["sources", "--upstream", fetchmail_upstream, "--plugin-upstream",
                 plugin_upstream])
    out = capsys.readouterr().out
    assert code == 0, out
    mirror = plugin.mirror_path(isolated_cache)
    assert (mirror / "HEAD").is_file()
    assert f"mirror {mirror} (cloned) from {plugin_upstream}" in out
