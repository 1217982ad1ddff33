"""Run many cells: builds grouped and shared, cells in parallel, results cached by input content.

The runner knows nothing about Docker: a `Backend` computes build keys, builds, and runs one
cell (harness.matrix.backend.DockerBackend is the real one; tests plug in their own).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

from filelock import FileLock

from harness import __version__, paths
from harness.atomic import atomic_copy, atomic_write
from harness.build import slots
from harness.cell.kinds import MatrixCell
from harness.cell.model import Cell
from harness.cell.result import CellResult, Outcome
from harness.errors import EXIT_FAILED, EXIT_OK, BuildError, HarnessError, PatchError
from harness.matrix.select import group_by_build

log = logging.getLogger(__name__)

CACHE_SCHEMA = 1
CACHED_OUTCOMES = ("pass", "fail", "skip")  # errors are infrastructure trouble: always rerun


# -- content hashes -------------------------------------------------------------------------


@cache
def harness_hash() -> str:
    """sha256 over the harness + tokens code and container files: a change reruns every cell."""
    h = hashlib.sha256(__version__.encode())
    root = paths.PROJECT_ROOT
    files: list[Path] = []
    for sub in ("harness", "tokens"):
        files += [p for p in (root / sub).rglob("*.py") if "__pycache__" not in p.parts]
    if paths.CONTAINERS_DIR.is_dir():
        files += [p for p in paths.CONTAINERS_DIR.rglob("*") if p.is_file()]
    for path in sorted(files):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def result_key(cell: MatrixCell, build_key: str, code_hash: str | None = None) -> str:
    """The cache key of a cell's result: its inputs, hashed.

    `build_key` already stands for the source commit, series content and image; the code hash
    covers the harness and token refresher that drive the run.
    """
    payload = {
        "schema": CACHE_SCHEMA,
        "cell": cell.identifier,
        "build": build_key,
        "harness": code_hash if code_hash is not None else harness_hash(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# -- result cache ---------------------------------------------------------------------------


class ResultCache:
    """results/<key>.json (+ <key>.log) under the cache dir; written atomically under a lock."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.cache_dir() / "results"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.root / ".lock"))

    def _json(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> CellResult | None:
        path = self._json(key)
        try:
            data = json.loads(path.read_text())
            result = CellResult.from_json(data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            log.warning("ignoring unreadable cached result %s: %s", path, exc)
            return None
        if result.key != key or result.outcome not in CACHED_OUTCOMES:
            return None
        result.cached = True
        return result

    def put(self, result: CellResult) -> CellResult:
        """Store a copy (with its log) if its outcome is cacheable; returns the stored form."""
        if result.outcome not in CACHED_OUTCOMES or not result.key:
            return result
        with self._lock:
            if result.log and Path(result.log).is_file():
                log_dest = self.root / f"{result.key}.log"
                atomic_copy(Path(result.log), log_dest)
                result.log = str(log_dest)
            atomic_write(self._json(result.key),
                         json.dumps(result.to_json(), indent=1, sort_keys=True))
        return result


# -- the runner -----------------------------------------------------------------------------


class Built(Protocol):
    """What a backend's build returns (harness.build.builder.BuildResult fits)."""

    @property
    def key(self) -> str: ...

    @property
    def binary(self) -> Path: ...

    @property
    def cached(self) -> bool: ...


B = TypeVar("B", bound=Built)
C = TypeVar("C", bound=MatrixCell)


class Backend(Protocol[B]):
    def build_key(self, cell: MatrixCell) -> str:
        """The build's content key, computed without building."""
        ...

    def build(self, cell: MatrixCell) -> B:
        """Build (or fetch from the build cache) the binary `cell` needs."""
        ...

    def run(self, cell: MatrixCell, built: B, log_path: Path) -> CellResult:
        """Run one cell end to end; infrastructure trouble may raise."""
        ...

    def session(self) -> AbstractContextManager[None]:
        """What the backend keeps for one run (DockerBackend: its cells' containers), let go
        when the run ends."""
        ...


Event = Callable[[str, str, "CellResult | None"], None]  # (kind, name, result)


@dataclass
class MatrixRun:
    results: list[CellResult]
    duration: float
    builds: dict[str, str]  # build group -> "built" / "cached" / "error: ..." / "not needed"

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def exit_code(self) -> int:
        """The exit-code policy for cells: EXIT_FAILED if any failed its checks, else the
        harness error code if any could not run (infrastructure), else 0."""
        outcomes = {r.outcome for r in self.results}
        if "fail" in outcomes:
            return EXIT_FAILED
        return HarnessError.exit_code if "error" in outcomes else EXIT_OK

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
        for r in self.results:
            out[r.outcome] += 1
        return out


def run_matrix(
    cells: Sequence[MatrixCell],
    backend: Backend[B],
    *,
    jobs: int = 2,
    cache: ResultCache | None = None,
    log_dir: Path,
    on_event: Event | None = None,
) -> MatrixRun:
    """Build each group once, run its cells in parallel, reuse cached results.

    `jobs` builds run their steps at once (they use the cores; harness.build.slots: one that
    waits for another gives its slot to the next, so up to twice as many are under way);
    twice as many cells (they mostly wait on sockets, containers and daemon poll intervals),
    on their own workers, so cells of the first builds run while later ones compile.

    Events: ("build-start", group), ("build-done", group), ("cell-start", id),
    ("cell-done", id, result). Results come back in the order of `cells`.
    """
    started = time.monotonic()
    emit = on_event or (lambda kind, name, result: None)
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, CellResult] = {}
    builds: dict[str, str] = {}
    keys: dict[str, str] = {}

    def finish(result: CellResult) -> None:
        results[result.identifier] = result
        emit("cell-done", result.identifier, result)

    groups = group_by_build(cells)
    pending_groups: dict[str, list[MatrixCell]] = {}
    for group, members in groups.items():
        why = members[0].unsupported
        if why:
            builds[group] = f"skip: {why}"
            for cell in members:
                finish(CellResult(cell, "skip", why))
            continue
        try:
            build_key = backend.build_key(members[0])
        except Exception as exc:  # a bad source or series: that group errors, others run
            builds[group] = f"error: {exc}"
            for cell in members:
                finish(CellResult(cell, "error", f"build key: {exc}"))
            continue
        todo = []
        for cell in members:
            key = result_key(cell, build_key)
            keys[cell.identifier] = key
            hit = cache.get(key) if cache else None
            if hit is not None:
                finish(hit)
            else:
                todo.append(cell)
        if todo:
            pending_groups[group] = todo
        else:
            builds[group] = "not needed (all cached)"

    workers = 2 * max(1, jobs)
    with backend.session(), \
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="build") as builders, \
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cell") as pool:
        futures: dict[Future[Any], tuple[str, Any]] = {}
        cores = slots.Slots(max(1, jobs))

        def do_build(group: str, cell: MatrixCell, rank: int) -> B:
            with slots.holding(cores, rank):
                emit("build-start", group, None)  # when it holds a slot, not when queued
                return backend.build(cell)

        def start_build(rank: int, group: str, members: list[MatrixCell]) -> None:
            future = builders.submit(do_build, group, members[0], rank)
            futures[future] = ("build", (group, members))

        def start_cell(cell: MatrixCell, built: B) -> None:
            # key the result by what was really built (inputs may change while we run)
            keys[cell.identifier] = result_key(cell, built.key)
            path = log_dir / f"{cell.identifier}.log"
            futures[pool.submit(_run_one, backend, cell, built, path, emit)] = ("cell", cell)

        try:
            for rank, (group, members) in enumerate(pending_groups.items()):
                start_build(rank, group, members)
            while futures:
                done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
                for fut in done:
                    kind, payload = futures.pop(fut)
                    if kind == "build":
                        group, members = payload
                        try:
                            built = fut.result()
                        except Exception as exc:  # reported per cell
                            # the series did not apply / the code did not compile: the cells
                            # fail; anything else (engine, images, disk) is an infrastructure error
                            outcome: Outcome = (
                                "fail" if isinstance(exc, PatchError | BuildError) else "error"
                            )
                            reason = f"build failed: {exc}"
                            builds[group] = f"{outcome}: {exc}"
                            emit("build-done", group, None)
                            for cell in members:
                                finish(CellResult(cell, outcome, reason))
                            continue
                        builds[group] = "cached" if built.cached else "built"
                        emit("build-done", group, None)
                        for cell in longest_first(members):
                            start_cell(cell, built)
                    else:
                        cell = payload
                        result = fut.result()
                        result.key = keys[cell.identifier]
                        if cache is not None:
                            result = cache.put(result)
                        finish(result)
        except KeyboardInterrupt:  # start nothing more; what runs ends and cleans up
            builders.shutdown(wait=False, cancel_futures=True)
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    return MatrixRun([results[c.identifier] for c in cells], time.monotonic() - started, builds)


def longest_first(cells: Sequence[C]) -> list[C]:
    """A build's cells in the order they start: the daemon cells (several polls each) first,
    so the last build's cells end together instead of waiting on a daemon cell started last."""
    return sorted(cells, key=lambda cell: not (isinstance(cell, Cell) and cell.daemon))


def _run_one(backend: Backend[B], cell: MatrixCell, built: B, log_path: Path,
             emit: Event) -> CellResult:
    emit("cell-start", cell.identifier, None)
    t0 = time.monotonic()
    try:
        result = backend.run(cell, built, log_path)
    except HarnessError as exc:
        result = CellResult(cell, "error", str(exc))
    except Exception as exc:  # one crashed cell must not stop the matrix
        with log_path.open("a") as fh:
            fh.write("\n--- harness exception ---\n" + traceback.format_exc())
        result = CellResult(cell, "error", f"{type(exc).__name__}: {exc}")
    if not result.duration:
        result.duration = time.monotonic() - t0
    if result.log is None and log_path.is_file():
        result.log = str(log_path)
    result.build_key = built.key
    result.binary = str(built.binary)
    return result
