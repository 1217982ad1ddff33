"""Report writers: JUnit XML parses back, results.json has its schema, Markdown links logs."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.cell.model import Cell
from harness.cell.result import CellResult
from harness.matrix.progress import Progress
from harness.matrix.reports import write_reports

C1 = Cell.parse("6.4.33-oauth64-bookworm-imap-xoauth2-tls")


def _results(tmp_path: Path) -> list[CellResult]:
    log = tmp_path / "a.log"
    log.write_text("fetchmail -vv output\n")
    return [
        CellResult(Cell.parse("6.4.33-oauth64-bookworm-imap-xoauth2-tls"), "pass", duration=1.5,
                   log=str(log), checks=["3 messages byte-exact"]),
        CellResult(Cell.parse("6.4.33-oauth64-bookworm-pop3-xoauth2-tls"), "fail",
                   "message 2 differs | body", duration=2.0),
        CellResult(Cell.parse("next-native-bookworm-imap-oauthbearer-tls"), "error",
                   "docker went away"),
        CellResult(Cell.parse("next-native-bookworm-imap-oauthbearer-tls-daemon"), "skip", "n/a",
                   cached=True),
    ]


def test_junit_parses_back(tmp_path: Path) -> None:
    paths = write_reports(_results(tmp_path), tmp_path / "out", duration=9.0)
    root = ET.parse(paths["junit"]).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("4", "1", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {r.identifier for r in _results(tmp_path)}
    passed = cases["6.4.33-oauth64-bookworm-imap-xoauth2-tls"]
    assert passed.get("classname") == "fetchmail.6.4.33-oauth64-bookworm"
    assert list(passed) == [passed.find("system-out")]
    assert "3 messages byte-exact" in (passed.findtext("system-out") or "")
    failure = cases["6.4.33-oauth64-bookworm-pop3-xoauth2-tls"].find("failure")
    assert failure is not None and failure.get("message") == "message 2 differs | body"
    assert cases["next-native-bookworm-imap-oauthbearer-tls"].find("error") is not None
    assert cases["next-native-bookworm-imap-oauthbearer-tls-daemon"].find("skipped") is not None


def test_results_json_schema(tmp_path: Path) -> None:
    paths = write_reports(_results(tmp_path), tmp_path / "out", duration=9.0,
                          builds={"next-native-bookworm": "built"})
    data = json.loads(paths["json"].read_text())
    assert data["schema"] == 1
    assert data["summary"] == {"pass": 1, "fail": 1, "error": 1, "skip": 1}
    assert data["builds"] == {"next-native-bookworm": "built"}
    required = {"cell", "outcome", "reason", "duration", "log", "cached", "key", "version",
                "series", "distro", "sanitizer", "protocol", "mechanism", "transport", "daemon",
                "build_group", "checks"}
    for entry in data["cells"]:
        assert required <= set(entry)
        assert entry["outcome"] in ("pass", "fail", "error", "skip")
    first = data["cells"][0]
    assert (first["version"], first["protocol"], first["mechanism"], first["transport"]) == (
        "6.4.33", "imap", "xoauth2", "tls")
    assert first["log"] == "logs/6.4.33-oauth64-bookworm-imap-xoauth2-tls.log"
    assert (tmp_path / "out" / first["log"]).read_text() == "fetchmail -vv output\n"
    assert data["cells"][3]["daemon"] is True


def test_markdown_table(tmp_path: Path) -> None:
    paths = write_reports(_results(tmp_path), tmp_path / "out", duration=9.0)
    text = paths["markdown"].read_text()
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| build |"))
    assert "imap-xoauth2-tls" in header and "imap-oauthbearer-tls-daemon" in header
    row = next(line for line in lines if line.startswith("| 6.4.33-oauth64-bookworm |"))
    assert "[✅](logs/6.4.33-oauth64-bookworm-imap-xoauth2-tls.log)" in row
    assert "❌" in row
    assert "message 2 differs \\| body" in text  # a reason cannot break the table


def test_progress_plain_lines() -> None:
    out = io.StringIO()
    progress = Progress(2, stream=out, live=False)
    progress("build-start", "next-native-bookworm", None)
    progress("cell-start", "next-native-bookworm-imap-oauthbearer-tls", None)
    progress("cell-done", "next-native-bookworm-imap-oauthbearer-tls",
             CellResult(Cell.parse("next-native-bookworm-imap-oauthbearer-tls"), "fail", "bad",
                        1.0))
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[0/2] building next-native-bookworm"
    assert lines[-1].startswith("[1/2] ❌ fail  next-native-bookworm-imap-oauthbearer-tls")
    assert "\x1b" not in out.getvalue()


def test_progress_live_block_is_redrawn_and_cleared() -> None:
    out = io.StringIO()
    progress = Progress(1, stream=out, live=True)
    progress("cell-start", C1.identifier, None)
    assert f"⏳ {C1}" in out.getvalue()
    progress("cell-done", C1.identifier, CellResult(C1, "pass"))
    progress.close()
    assert "\x1b[" in out.getvalue() and f"✅ pass  {C1}" in out.getvalue()


def test_summary_line_names_the_log_only_when_there_is_one() -> None:
    assert CellResult(C1, "fail", "build failed").summary() == f"FAIL {C1}: build failed"
    assert CellResult(C1, "error", "boom", log="/l/c.log").summary() == \
        f"ERROR {C1}: boom  [log: /l/c.log]"
