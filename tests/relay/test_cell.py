"""The relay cell kind in the matrix: identifiers, selection, listing, runner, reports."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.cell.kinds import MatrixCell, kind_of, parse_cell
from harness.cell.model import DISTROS, Cell
from harness.cell.relay import SCENARIOS, RelayCell, relay_cells
from harness.cell.result import CellResult
from harness.cli import main
from harness.errors import ConfigError
from harness.matrix.reports import junit_xml, markdown, results_json
from harness.matrix.runner import run_matrix
from harness.matrix.select import Selector, generate, group_by_build
from harness.source.versions import Version

CELLS = generate([Version.parse("6.4.33")], lambda v: "oauth64", distros=("bookworm",))


@dataclass(frozen=True)
class Built:
    key: str
    binary: Path
    cached: bool = False


@dataclass
class RecordingBackend:
    """The runner's plug-in interface, recording what it was asked (no Docker)."""

    verdicts: dict[str, str] = field(default_factory=dict)
    builds: list[str] = field(default_factory=list)

    def build_key(self, cell: MatrixCell) -> str:
        return "key-" + cell.build_group

    def build(self, cell: MatrixCell) -> Built:
        self.builds.append(cell.build_group)
        return Built(self.build_key(cell), Path("/plugins") / cell.build_group)

    def session(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def run(self, cell: MatrixCell, built: Built, log_path: Path) -> CellResult:
        log_path.write_text(cell.identifier)
        outcome = self.verdicts.get(cell.identifier, "pass")
        return CellResult(cell, outcome, outcome)  # type: ignore[arg-type]


def test_identifiers_round_trip_and_name_their_plugin_build() -> None:
    cells = relay_cells()
    assert len(cells) == len(DISTROS) * len(SCENARIOS)
    for cell in cells:
        assert RelayCell.parse(cell.identifier) == cell == parse_cell(cell.identifier)
        assert cell.identifier == f"{cell.build_group}-{cell.scenario}"
    assert RelayCell("bookworm", "validation-down").identifier == "relay-bookworm-validation-down"
    assert set(group_by_build(cells)) == {f"relay-{d}" for d in DISTROS}
    assert isinstance(parse_cell("6.4.33-oauth64-bookworm-imap-xoauth2-tls"), Cell)


@pytest.mark.parametrize(("identifier", "message"), [
    ("relay-bookworm-carrier-pigeon", "unknown relay scenario 'carrier-pigeon'"),
    ("relay-wheezy-rotation", "unknown distro 'wheezy'"),
    ("relay-bookworm", "not a relay cell identifier"),
])
def test_bad_identifiers_say_what_is_wrong(identifier: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_cell(identifier)


def test_selectors_reach_relay_cells_beside_fetchmail_cells() -> None:
    universe = [*CELLS, *relay_cells(("bookworm",))]
    assert Selector.parse("relay-*").select(universe) == relay_cells(("bookworm",))
    both = Selector.parse("*-bookworm-*,!*-daemon").select(universe)
    assert {kind_of(c) for c in both} == {"fetchmail", "relay"}
    assert [c.identifier for c in Selector.parse("relay-*-rot*").select(universe)] == [
        "relay-bookworm-rotation"]


def test_matrix_list_shows_relay_groups(fetchmail_upstream: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--upstream", fetchmail_upstream, "--list", "--select",
                 "relay-bookworm-*,relay-trixie-sendmail"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert out[0] == "# build relay-bookworm" and out[1] == "relay-bookworm-sendmail"
    assert out[-3:] == ["# build relay-trixie", "relay-trixie-sendmail", ""]
    assert main(["matrix", "--upstream", fetchmail_upstream, "--list", "--json",
                 "--select", "relay-*"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in data["include"]] == [f"relay-{d}" for d in DISTROS]


def test_the_runner_builds_one_plugin_per_distro_and_caches_results(tmp_path: Path) -> None:
    from harness.matrix.runner import ResultCache

    cells = relay_cells(("bookworm", "trixie"))
    backend = RecordingBackend(verdicts={"relay-trixie-expired": "fail"})
    cache = ResultCache(tmp_path / "results")
    first = run_matrix(cells, backend, cache=cache, log_dir=tmp_path / "logs")
    assert sorted(backend.builds) == ["relay-bookworm", "relay-trixie"]
    assert first.counts() == {"pass": len(cells) - 1, "fail": 1, "error": 0, "skip": 0}
    again = run_matrix(cells, RecordingBackend(), cache=cache, log_dir=tmp_path / "logs")
    assert all(r.cached for r in again.results)


def test_reports_carry_relay_cells() -> None:
    results = [
        CellResult(parse_cell("6.4.33-oauth64-bookworm-imap-xoauth2-tls"), "pass", duration=1.0),
        CellResult(RelayCell("bookworm", "rotation"), "pass", duration=7.0, checks=["rotated"]),
        CellResult(RelayCell("bookworm", "expired"), "fail", "no deferral", duration=5.0),
    ]
    data = results_json(results, 13.0, {}, {})
    relay = [c for c in data["cells"] if c["kind"] == "relay"]
    assert [(c["scenario"], c["distro"], c["build_group"]) for c in relay] == [
        ("rotation", "bookworm", "relay-bookworm"), ("expired", "bookworm", "relay-bookworm")]
    assert data["cells"][0]["kind"] == "fetchmail" and data["cells"][0]["protocol"] == "imap"
    xml = junit_xml(results, 13.0)
    assert 'classname="relay.relay-bookworm" name="relay-bookworm-expired"' in xml
    text = markdown(results, {})
    assert "| relay (postfix) | rotation | expired |" in text
    assert "| relay-bookworm | ✅ | ❌ |" in text
    assert "| build | imap-xoauth2-tls |" in text
    assert "relay-bookworm-expired: no deferral" in text
