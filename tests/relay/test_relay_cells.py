"""Relay cells with real postfix: a representative slice of the matrix's `relay-*` cells, two
bookworm cells run as `matrix` runs them (the whole set, every scenario on every distro, runs
with `fetchmail-harness matrix --select 'relay-*'`), and the rotation cell caught failing."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from harness.cell.kinds import MatrixCell
from harness.cell.refresher import refresher_command
from harness.cell.relay import RelayCell
from harness.commands.matrix import export_builds
from harness.matrix.backend import DockerBackend
from harness.matrix.runner import ResultCache, run_matrix
from harness.relay.box import PostfixBox
from harness.relay.plugin import PLUGIN_FILE, PluginBuild
from harness.relay.run import run_relay_cell
from harness.relay.world import World

pytestmark = pytest.mark.docker


def test_the_matrix_runs_relay_cells_and_exports_their_plugin(
    relay_plugin: PluginBuild, plugin_upstream: str, session_cache: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The matrix's own backend: the plugin build (the session's, from the cache), one relay
    container per cell, results cached, the build exported as `matrix --dist` does."""
    monkeypatch.setenv("FETCHMAIL_HARNESS_CACHE", str(session_cache))
    backend = DockerBackend(plugin_upstream=plugin_upstream)
    cells: list[MatrixCell] = [RelayCell("bookworm", "sendmail"),
                               RelayCell("bookworm", "rotation")]
    cache = ResultCache(tmp_path / "results")
    run = run_matrix(cells, backend, jobs=2, cache=cache, log_dir=tmp_path / "logs")
    logs = "\n".join(Path(r.log or "/dev/null").read_text() for r in run.results)
    assert run.ok, f"{[(r.identifier, r.reason) for r in run.results]}\n{logs[-3000:]}"
    assert [r.identifier for r in run.results] == [c.identifier for c in cells]
    assert all(len(r.checks) >= 2 for r in run.results)
    assert list(run.builds) == ["relay-bookworm"]
    again = run_matrix(cells, backend, jobs=2, cache=cache, log_dir=tmp_path / "logs2")
    assert all(r.cached and r.outcome == "pass" for r in again.results)
    assert export_builds(backend, cells, tmp_path / "dist") == 1
    exported = tmp_path / "dist" / relay_plugin.identifier / PLUGIN_FILE
    assert exported.read_bytes() == relay_plugin.plugin.read_bytes()


def _in_place(world: World) -> None:
    """A refresh job of the old kind: every token refreshed, the map rewritten and postmapped
    in place (same file, same inode)."""
    lines = []
    for account in world.accounts:
        subprocess.run([*refresher_command(), "-c", str(world.configs[account.name]),
                        "refresh"], check=True, capture_output=True, timeout=60)
        lines.append(f"{account.user} {account.user}:{world.token(account)}\n")
    world.note_tokens()
    world.map_path.write_text("".join(lines))
    assert world.postmap is not None
    subprocess.run([str(world.postmap), f"hash:{world.map_path}"], check=True,
                   capture_output=True, timeout=60)


def test_rotation_cell_catches_a_map_rebuilt_in_place(
    relay: PostfixBox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """postmap over the live map within one second leaves its mtime second alone: postfix keeps
    the stale token, and the rotation cell must say so."""
    first = {"done": False}
    real_cron = World.cron

    def cron(self: World) -> object:
        if not first["done"]:  # the initial map as the real job writes it
            first["done"] = True
            return real_cron(self)
        _in_place(self)
        return None

    monkeypatch.setattr(World, "cron", cron)
    result = run_relay_cell(RelayCell("bookworm", "rotation"), relay, tmp_path / "cell.log")
    assert result.outcome == "fail", shlex.quote(result.reason)
    # the mail went out with the token before the current one
    stale = re.search(r"token\(s\) \[(\d+)\] of (\d+), not \(only\) the current one",
                      result.reason)
    assert stale is not None, result.reason
    assert int(stale[1]) == int(stale[2]) - 1
