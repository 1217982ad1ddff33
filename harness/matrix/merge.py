"""One report from many: the report dirs of parallel CI jobs merged, their logs kept.

Each input dir is what `matrix --report-dir` wrote (results.json, logs/<cell>.log). A dir
without a readable results.json (a job that died) is named in `problems`, never dropped
silently; a cell reported twice keeps its first result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.cell.result import CellResult
from harness.matrix.reports import REPORT_SCHEMA


@dataclass
class Merged:
    results: list[CellResult] = field(default_factory=list)
    duration: float = 0.0  # the longest job's: the jobs ran side by side
    builds: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_reports(dirs: Sequence[Path]) -> Merged:
    merged = Merged()
    seen: set[str] = set()
    for report_dir in dirs:
        path = report_dir / "results.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("schema") != REPORT_SCHEMA:
                raise ValueError(f"schema {data.get('schema')!r}, not {REPORT_SCHEMA}")
            results = [_result(entry, report_dir) for entry in data["cells"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            merged.problems.append(f"{report_dir}: no usable results.json ({exc})")
            continue
        for result in results:
            if result.identifier in seen:
                merged.problems.append(f"{report_dir}: {result.identifier} reported twice; "
                                       "the first result is kept")
                continue
            seen.add(result.identifier)
            merged.results.append(result)
        merged.duration = max(merged.duration, float(data.get("duration", 0.0)))
        merged.builds.update(data.get("builds", {}))
    return merged


def _result(entry: dict[str, object], report_dir: Path) -> CellResult:
    result = CellResult.from_json(dict(entry))
    if result.log and not Path(result.log).is_absolute():
        result.log = str(report_dir / result.log)  # logs/<cell>.log inside that report dir
    if result.log and not Path(result.log).is_file():
        result.log = None
    return result


def link_logs(relative: dict[str, str], url: str | None) -> dict[str, str]:
    """Where the summary's log links go: relative paths (the report dir itself), below `url`
    when it ends in '/' (GitLab serves each file of an artifact), else `url` itself for every
    log (GitHub's artifact link: one archive holding logs/<cell>.log)."""
    if not url:
        return relative
    if url.endswith("/"):
        return {cell: url + rel for cell, rel in relative.items()}
    return {cell: url for cell in relative}
