"""The XOAUTH2 plugin built once per session (bookworm), and one relay container for the
session's relay tests (postfix is reconfigured, its queue emptied, per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.relay.box import PostfixBox
from harness.relay.plugin import PluginBuild, PluginSource, build_plugin


@pytest.fixture(scope="session")
def relay_plugin(docker_engine: None, plugin_upstream: str, session_cache: Path) -> PluginBuild:
    return build_plugin("bookworm", source=PluginSource(plugin_upstream, cache=session_cache),
                        cache=session_cache)


@pytest.fixture(scope="session")
def relay(relay_plugin: PluginBuild, session_cache: Path) -> Iterator[PostfixBox]:
    from harness.build.engine import ensure_engine
    from harness.relay.box import relay_box

    with relay_box(ensure_engine(), relay_plugin, session_cache) as box:
        yield box
