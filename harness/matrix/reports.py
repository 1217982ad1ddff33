"""Matrix reports: JUnit XML (CI test tabs), results.json (machines), a Markdown table (humans)."""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.atomic import atomic_write
from harness.cell.kinds import MatrixCell, kind_of
from harness.cell.relay import RelayCell
from harness.cell.result import CellResult

REPORT_SCHEMA = 1
MARKS = {"pass": "✅", "fail": "❌", "error": "⚠️", "skip": "⏭️"}


def collect_logs(results: Sequence[CellResult], report_dir: Path) -> dict[str, str]:
    """Copy each cell's log to report_dir/logs/<id>.log; returns id -> path relative to the dir."""
    logs = report_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    rel: dict[str, str] = {}
    for r in results:
        if r.log and Path(r.log).is_file():
            dest = logs / f"{r.identifier}.log"
            if Path(r.log).resolve() != dest.resolve():
                shutil.copyfile(r.log, dest)
            rel[r.identifier] = f"logs/{dest.name}"
    return rel


def junit_xml(results: Sequence[CellResult], duration: float) -> str:
    counts = {k: sum(r.outcome == k for r in results) for k in ("fail", "error", "skip")}
    suites = ET.Element("testsuites", name="fetchmail-matrix", tests=str(len(results)),
                        failures=str(counts["fail"]), errors=str(counts["error"]),
                        skipped=str(counts["skip"]), time=f"{duration:.3f}")
    suite = ET.SubElement(suites, "testsuite", name="fetchmail-matrix", tests=str(len(results)),
                          failures=str(counts["fail"]), errors=str(counts["error"]),
                          skipped=str(counts["skip"]), time=f"{duration:.3f}",
                          timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))
    for r in results:
        case = ET.SubElement(suite, "testcase",
                             classname=f"{kind_of(r.cell)}.{r.cell.build_group}",
                             name=r.identifier, time=f"{r.duration:.3f}")
        if r.outcome == "fail":
            ET.SubElement(case, "failure", message=r.reason).text = r.reason
        elif r.outcome == "error":
            ET.SubElement(case, "error", message=r.reason).text = r.reason
        elif r.outcome == "skip":
            ET.SubElement(case, "skipped", message=r.reason)
        out = [*r.checks]
        if r.cached:
            out.append("(result taken from the cache)")
        if r.log:
            out.append(f"log: {r.log}")
        if out:
            ET.SubElement(case, "system-out").text = "\n".join(out)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def results_json(results: Sequence[CellResult], duration: float, logs: dict[str, str],
                 builds: dict[str, str]) -> dict[str, Any]:
    cells = []
    for r in results:
        cell = r.cell
        entry = r.to_json()
        entry.update(kind=kind_of(cell), distro=cell.distro, build_group=cell.build_group,
                     log=logs.get(r.identifier, r.log), **_fields(cell))
        cells.append(entry)
    summary = {k: sum(r.outcome == k for r in results) for k in ("pass", "fail", "error", "skip")}
    return {
        "schema": REPORT_SCHEMA,
        "harness_version": __version__,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration": round(duration, 3),
        "summary": summary,
        "builds": builds,
        "cells": cells,
    }


def _fields(cell: MatrixCell) -> dict[str, Any]:
    if isinstance(cell, RelayCell):
        return {"scenario": cell.scenario}
    return {"version": str(cell.version), "series": cell.series, "sanitizer": cell.sanitizer,
            "packaged": cell.packaged, "protocol": cell.protocol,
            "mechanism": cell.mechanism, "transport": cell.transport, "daemon": cell.daemon,
            "long_token": cell.long_token, "server": cell.server}


def _table(results: list[CellResult], logs: dict[str, str], head: str) -> list[str]:
    """Rows: build groups; columns: the rest of the identifier (protocol-mechanism-transport,
    or a relay cell's scenario)."""
    rows: dict[str, dict[str, CellResult]] = {}
    columns: list[str] = []
    for r in results:
        group = r.cell.build_group
        col = r.identifier[len(group) + 1:]
        if col not in columns:
            columns.append(col)
        rows.setdefault(group, {})[col] = r
    if head == "build":
        columns.sort(key=lambda c: (c.endswith("-daemon"), c))
    lines = [f"| {head} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for group, by_col in rows.items():
        marks = []
        for col in columns:
            found = by_col.get(col)
            if found is None:
                marks.append(" ")
                continue
            mark = MARKS[found.outcome]
            link = logs.get(found.identifier)
            marks.append(f"[{mark}]({link})" if link else mark)
        lines.append(f"| {group} | " + " | ".join(marks) + " |")
    return lines


def markdown(results: Sequence[CellResult], logs: dict[str, str]) -> str:
    """One table per kind of cell: fetchmail builds x protocol-mechanism-transport, then the
    relay cells (postfix of each distro x scenario)."""
    summary = {k: sum(r.outcome == k for r in results) for k in MARKS}
    lines = [
        "# fetchmail OAuth2 matrix",
        "",
        " · ".join(f"{MARKS[k]} {k}: {n}" for k, n in summary.items()),
    ]
    for kind, head in (("fetchmail", "build"), ("relay", "relay (postfix)")):
        mine = [r for r in results if kind_of(r.cell) == kind]
        if mine:
            lines += ["", *_table(mine, logs, head)]
    problems = [r for r in results if r.outcome in ("fail", "error")]
    if problems:
        lines += ["", "## Problems", ""]
        for r in problems:
            reason = r.reason.replace("\n", " ").replace("|", "\\|")
            link = logs.get(r.identifier)
            name = f"[{r.identifier}]({link})" if link else r.identifier
            lines.append(f"- {MARKS[r.outcome]} {name}: {reason}")
    return "\n".join(lines) + "\n"


def write_reports(results: Sequence[CellResult], report_dir: Path, *, duration: float,
                  builds: dict[str, str] | None = None) -> dict[str, Path]:
    """junit.xml, results.json, matrix.md (+ logs/) in report_dir; returns their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    logs = collect_logs(results, report_dir)
    out = {
        "junit": report_dir / "junit.xml",
        "json": report_dir / "results.json",
        "markdown": report_dir / "matrix.md",
    }
    atomic_write(out["junit"], junit_xml(results, duration))
    data = results_json(results, duration, logs, builds or {})
    atomic_write(out["json"], json.dumps(data, indent=2) + "\n")
    atomic_write(out["markdown"], markdown(results, logs))
    return out
