"""`report`: CI jobs' report dirs merged into one JUnit/JSON/Markdown report with working links;
`matrix --chunk` / `--list --json --chunks` deal the same build groups to the same jobs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cell.model import Cell
from harness.cell.result import CellResult
from harness.cli import main
from harness.commands.matrix import chunk_of, ci_matrix, deal
from harness.errors import ConfigError
from harness.matrix.reports import write_reports

PASSING = "6.4.33-oauth64-bookworm-imap-xoauth2-tls"
FAILING = "6.4.32-oauth64-bookworm-pop3-oauthbearer-starttls-dovecot"


def _job(root: Path, name: str, results: list[CellResult], duration: float) -> Path:
    for r in results:
        log = root / f"{name}-{r.identifier}.log"
        log.write_text(f"log of {r.identifier}\n")
        r.log = str(log)
    write_reports(results, root / name, duration=duration,
                  builds={r.cell.build_group: "built" for r in results})
    return root / name


def _two_jobs(tmp_path: Path) -> list[Path]:
    return [_job(tmp_path, "report-0", [CellResult(Cell.parse(PASSING), "pass", duration=1.0)],
                 30.0),
            _job(tmp_path, "report-1", [CellResult(Cell.parse(FAILING), "fail", "no AUTH seen")],
                 50.0)]


def test_reports_of_two_jobs_become_one(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _two_jobs(tmp_path)
    out = tmp_path / "merged"
    assert main(["report", *map(str, dirs), "--out", str(out)]) == 0
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "1")
    data = json.loads((out / "results.json").read_text())
    assert [c["cell"] for c in data["cells"]] == [PASSING, FAILING]
    assert data["duration"] == 50.0, "the jobs ran side by side: the longest one"
    for cell in (PASSING, FAILING):
        assert (out / "logs" / f"{cell}.log").read_text() == f"log of {cell}\n"
    summary = capsys.readouterr().out
    assert summary == (out / "matrix.md").read_text()
    assert f"[{FAILING}](logs/{FAILING}.log): no AUTH seen" in summary


@pytest.mark.parametrize(("url", "link"), [
    ("https://gitlab.example/job/7/artifacts/file/matrix-report/",
     f"https://gitlab.example/job/7/artifacts/file/matrix-report/logs/{FAILING}.log"),
    ("https://github.example/run/1/artifacts/99", "https://github.example/run/1/artifacts/99"),
])
def test_summary_links_go_where_the_logs_are(tmp_path: Path, url: str, link: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _two_jobs(tmp_path)
    out = tmp_path / "merged"
    assert main(["report", *map(str, dirs), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--logs-url", url]) == 0
    summary = capsys.readouterr().out
    assert f"[{FAILING}]({link}): no AUTH seen" in summary
    assert "](logs/" not in summary


def test_a_job_without_results_is_named_and_fails_the_merge(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _two_jobs(tmp_path)
    died = tmp_path / "report-2"
    died.mkdir()
    corrupt = tmp_path / "report-3"
    corrupt.mkdir()
    (corrupt / "results.json").write_text("{not json")
    out = tmp_path / "merged"
    assert main(["report", *map(str, [*dirs, died, corrupt]), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"{died}: no usable results.json" in captured.out
    assert f"{corrupt}: no usable results.json" in captured.err
    assert len(json.loads((out / "results.json").read_text())["cells"]) == 2, "nothing lost"


def test_merging_into_an_input_dir_is_refused(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _two_jobs(tmp_path)
    before = (dirs[0] / "results.json").read_text()
    assert main(["report", *map(str, dirs), "--out", str(dirs[0])]) == 2
    assert "is one of the report dirs" in capsys.readouterr().err
    assert (dirs[0] / "results.json").read_text() == before


def _cells() -> list[Cell]:
    ids = [f"6.4.{v}-oauth64-{d}-imap-xoauth2-tls" for v in (30, 31, 32, 33)
           for d in ("bookworm", "trixie")]
    return [Cell.parse(i) for i in ids]


def test_chunks_deal_the_groups_of_the_ci_list() -> None:
    cells = _cells()
    include = ci_matrix(cells, 3)["include"]
    assert len(include) == 3
    for index, entry in enumerate(include, 1):
        chunk = chunk_of(cells, f"{index}/3")
        assert ",".join(c.identifier for c in chunk) == entry["select"]
        assert entry["distros"] == ",".join(sorted({c.distro for c in chunk}))
    assert sorted(c for i in range(1, 4) for c in chunk_of(cells, f"{i}/3")) == sorted(cells)
    assert chunk_of(cells, "20/20") == [], "more jobs than build groups: the rest run nothing"
    assert deal(["a", "b"], 0) == [["a"], ["b"]]


@pytest.mark.parametrize("bad", ["0/3", "4/3", "2", "a/b"])
def test_a_bad_chunk_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        chunk_of(_cells(), bad)
