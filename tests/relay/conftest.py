"""The XOAUTH2 plugin built once per session (bookworm), shared by the relay tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.relay.plugin import PluginBuild, PluginSource, build_plugin


@pytest.fixture(scope="session")
def relay_plugin(docker_engine: None, plugin_upstream: str, session_cache: Path) -> PluginBuild:
    return build_plugin("bookworm", source=PluginSource(plugin_upstream, cache=session_cache),
                        cache=session_cache)
