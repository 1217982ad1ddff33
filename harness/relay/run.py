"""One relay cell end to end: mock world on the host, postfix in the relay container, checks.

A failed check makes the cell `fail` (its reason is the check); trouble with the engine, the
image, the plugin build or the refresher makes it `error` (raised). `box` lets several cells
share one running relay container (postfix is reconfigured and its queue emptied per cell).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.cell.checks import judge
from harness.cell.log import CellLog
from harness.cell.relay import RelayCell
from harness.cell.result import CellResult
from harness.relay.box import PostfixBox
from harness.relay.scenarios import PLANS, Run, prepare
from harness.relay.world import world


def run_relay_cell(cell: RelayCell, box: PostfixBox, log_path: Path) -> CellResult:
    """Run `cell` in the (running) relay `box`; pass/fail, or raise on infrastructure."""
    plan = PLANS[cell.scenario]
    clog = CellLog(log_path)
    clog.section("cell", f"{cell}\nplugin {box.plugin.plugin} ({box.plugin.commit})\n")
    tmp = Path(tempfile.mkdtemp(prefix=f"{cell.scenario}-", dir=box.shared))
    checks: list[str] = []

    def play() -> None:
        with world(tmp, list(plan.relays), list(plan.accounts),
                   token_bytes=plan.token_bytes) as w:
            run = Run(cell.identifier, w, box, clog, checks)
            try:
                prepare(run, plan)
                plan.play(run)
            finally:
                clog.section("refresh jobs", "\n".join(w.transcript))
                clog.section("postfix log", run.cell_log() if box.started else "")
                clog.section("submission server transcripts", w.transcripts())

    return judge(cell, clog, log_path, checks, play)
