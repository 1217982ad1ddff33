"""`fetchmail-harness bench`: the matrix's wall time, cold and warm, against plain builds.

Everything is measured side by side in one run on the same machine and reported as ratios:
the baseline is a sequential `bootstrap && ./configure && make -j2` of the same releases in one
container of the same build image (no ccache, no patches, no tests), timed before and after
the matrices (their mean is the 1.0: load from elsewhere drifts over a run). The cold matrix
starts from an empty cache: whatever its builds reuse (ccache, config.cache) they made
themselves; the ccache hit rate of its builds is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from harness import paths
from harness.cell.model import Cell
from harness.cell.result import CellResult
from harness.errors import BuildError
from harness.matrix.select import Selector, cells_for, group_by_build
from harness.source.mirror import configured_upstream

if TYPE_CHECKING:  # the Docker side is imported when the bench runs
    from harness.matrix.backend import DockerBackend
    from harness.matrix.runner import MatrixRun, ResultCache

NAME = "bench"
HELP = "time the matrix cold/warm against plain sequential builds (reports ratios)"
# six neighbouring releases: what a matrix's builds share (harness.build.reuse) shows here
# (the long-token cells came after the figures this bench is compared with; -longtoken adds them)
DEFAULT_SELECT = "6.4.2[89]-*-bookworm-*,6.4.3[0-3]-*-bookworm-*,!*-longtoken"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", default=DEFAULT_SELECT,
                        help=f"cells to time (default {DEFAULT_SELECT})")
    parser.add_argument("--upstream", help="git URL or path of fetchmail")
    parser.add_argument("--patches-dir", type=Path, help="patch series dir (default patches/)")
    parser.add_argument("--jobs", "-j", type=int, default=2)
    parser.add_argument("--json-out", type=Path, help="also write the numbers here")


@contextmanager
def _fresh_cache() -> Iterator[Path]:
    """A throwaway cache dir (FETCHMAIL_HARNESS_CACHE) for the duration: a truly cold start."""
    old = os.environ.get("FETCHMAIL_HARNESS_CACHE")
    with tempfile.TemporaryDirectory(prefix="fmh-bench-") as tmp:
        os.environ["FETCHMAIL_HARNESS_CACHE"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("FETCHMAIL_HARNESS_CACHE", None)
            else:
                os.environ["FETCHMAIL_HARNESS_CACHE"] = old


def _timed_matrix(cells: list[Cell], backend: DockerBackend, jobs: int, cache: ResultCache,
                  logs: Path) -> MatrixRun:
    from harness.matrix.runner import run_matrix

    t0 = time.monotonic()
    run = run_matrix(cells, backend, jobs=jobs, cache=cache, log_dir=logs)
    run.duration = time.monotonic() - t0
    return run


def _daemon(result: CellResult) -> bool:
    return isinstance(result.cell, Cell) and result.cell.daemon


def _baseline(backend: DockerBackend, groups: dict[str, list[Cell]]) -> float:
    """Sequential plain builds of the same releases, one container of the same image."""
    from harness.build.container import Container
    from harness.series.apply import apply_series, require_ok
    from harness.series.buildfixes import as_series, fixes_for

    firsts = [members[0] for members in groups.values()]
    with Container(backend.client, backend.image(firsts[0].distro), network_mode="none") as box, \
            tempfile.TemporaryDirectory(prefix="fmh-plain-") as tmp:
        trees = []
        for cell in firsts:
            tree = Path(tmp) / cell.build_group
            shutil.copytree(backend.source.worktree(cell.version), tree, symlinks=True,
                            ignore=shutil.ignore_patterns(".git"))
            fixes = fixes_for(cell.version, False, backend.patches_dir)  # a plain build's
            if fixes:
                require_ok(apply_series(as_series(fixes, cell.version, tree), tree))
            dest = f"/plain/{cell.build_group}"
            box.put(tree, dest)
            trees.append(dest)
        t0 = time.monotonic()
        for dest in trees:
            script = (
                "set -e; if [ -x ./autogen.sh ]; then ./autogen.sh; else autoreconf -fi; fi; "
                "./configure --with-ssl; make -j2"
            )
            code = box.run(script, workdir=dest, stream=lambda _text: None)
            if code != 0:
                raise BuildError(f"baseline build in {dest} failed with exit {code}")
        return time.monotonic() - t0


def _ccache_rate(builds: Path) -> str:
    """hits/(hits+misses) over the compiles of the builds under `builds` (their manifests)."""
    hits = misses = 0
    for manifest in builds.glob("*/manifest.json"):
        counts = json.loads(manifest.read_text()).get("ccache") or {}
        hits += int(counts.get("hits", 0))
        misses += int(counts.get("misses", 0))
    if not hits + misses:
        return "n/a (no ccache stats log in these builds)"
    return f"{hits / (hits + misses):.1%} ({hits} hits, {misses} misses)"


def run(args: argparse.Namespace) -> int:
    from harness.matrix.backend import DockerBackend
    from harness.matrix.runner import ResultCache

    upstream = configured_upstream(args.upstream)  # the user's, before the cache is swapped
    with _fresh_cache() as cache_root:
        # a frozen copy of the series: an edit while the bench runs must not turn the warm
        # run into a rebuild (the cache would rightly treat it as a new input)
        patches = cache_root / "patches"
        shutil.copytree(args.patches_dir or paths.PATCHES_DIR, patches)
        backend = DockerBackend(upstream=upstream, patches_dir=patches)
        backend.source.ensure_mirror()
        universe = cells_for(backend.source.versions(), patches_dir=patches)
        cells = Selector.parse(args.select).select(universe)
        groups = group_by_build(cells)
        for cell in cells[:1]:
            backend.image(cell.distro)  # images exist before any clock starts
        print(f"bench: {len(cells)} cells, {len(groups)} builds: {', '.join(groups)}",
              file=sys.stderr)

        baseline_before = _baseline(backend, groups)
        print(f"plain sequential builds: {baseline_before:.1f}s", file=sys.stderr)
        results = ResultCache(cache_root / "results")
        cold = _timed_matrix(cells, backend, args.jobs, results, cache_root / "l1")
        ccache = _ccache_rate(cache_root / "builds")
        print(f"cold matrix: {cold.duration:.1f}s {cold.counts()}, ccache {ccache}",
              file=sys.stderr)
        warm = _timed_matrix(cells, backend, args.jobs, results, cache_root / "l2")
        print(f"warm matrix: {warm.duration:.1f}s", file=sys.stderr)
        rerun = _timed_matrix(cells, backend, args.jobs, ResultCache(cache_root / "r2"),
                              cache_root / "l3")
        print(f"builds cached, cells rerun: {rerun.duration:.1f}s", file=sys.stderr)
        baseline_after = _baseline(backend, groups)
        print(f"plain sequential builds again: {baseline_after:.1f}s", file=sys.stderr)
        baseline = (baseline_before + baseline_after) / 2
        durations = [r.duration for r in rerun.results if not r.cached]
        one = [r.duration for r in rerun.results if not r.cached and not _daemon(r)]

    numbers = {
        "cells": len(cells),
        "builds": len(groups),
        "jobs": args.jobs,
        "cold_matrix_s": round(cold.duration, 2),
        "warm_matrix_s": round(warm.duration, 2),
        "cells_only_s": round(rerun.duration, 2),
        "plain_builds_s": round(baseline, 2),
        "plain_builds_before_after_s": [round(baseline_before, 2), round(baseline_after, 2)],
        "ratio_cold_vs_plain": round(cold.duration / baseline, 3),
        "ratio_warm_vs_plain": round(warm.duration / baseline, 4),
        "ratio_cells_only_vs_plain": round(rerun.duration / baseline, 3),
        "cold_ccache_hit_rate": ccache,
        "one_cell_median_s": round(statistics.median(one), 2) if one else None,
        "daemon_cell_median_s": round(statistics.median(
            [r.duration for r in rerun.results if _daemon(r)] or [0.0]), 2),
        "cell_durations_sum_s": round(sum(durations), 2),
        "outcomes": cold.counts(),
    }
    width = max(len(k) for k in numbers)
    for key, value in numbers.items():
        print(f"{key:<{width}}  {value}")
    if args.json_out:
        args.json_out.write_text(json.dumps(numbers, indent=2) + "\n")
    return cold.exit_code
