"""Relay cells with real postfix in one relay container: a representative slice of the matrix's
`relay-*` cells (the whole set runs with `fetchmail-harness matrix --select 'relay-*'`)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from harness.cell.refresher import refresher_command
from harness.cell.relay import RelayCell, Scenario
from harness.relay.box import PostfixBox
from harness.relay.run import run_relay_cell
from harness.relay.world import World

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("scenario", ["sendmail", "rotation", "expired", "large-token",
                                      "password-relay"])
def test_relay_cell_passes(relay: PostfixBox, scenario: Scenario, tmp_path: Path) -> None:
    result = run_relay_cell(RelayCell("bookworm", scenario), relay, tmp_path / "cell.log")
    assert result.outcome == "pass", f"{result.reason}\n{(tmp_path / 'cell.log').read_text()}"
    assert len(result.checks) >= 2


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
