"""The matrix runner and its result cache, driven by a backend that records what it was asked.

The backend here is not a stub of the real one: it is the runner's plug-in interface, used to
check the runner's own logic (grouping, sharing, caching, error handling) without Docker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.build import slots
from harness.cell.model import Cell
from harness.cell.result import CellResult
from harness.errors import BuildError, EngineError
from harness.matrix import runner
from harness.matrix.runner import ResultCache, harness_hash, result_key, run_matrix
from harness.matrix.select import generate
from harness.source.versions import Version


@dataclass(frozen=True)
class FakeBuilt:
    key: str
    binary: Path
    cached: bool = False


@dataclass
class RecordingBackend:
    build_keys: dict[str, str] = field(default_factory=dict)  # group -> key override
    failing_groups: set[str] = field(default_factory=set)
    verdicts: dict[str, str] = field(default_factory=dict)  # cell id -> outcome
    builds: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: list[str] = field(default_factory=list)  # "open"/"closed", and the runs inside

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        self.sessions.append("open")
        try:
            yield
        finally:
            self.sessions.append(f"closed after {len(self.runs)} runs")

    def build_key(self, cell: Cell) -> str:
        return self.build_keys.get(cell.build_group, "key-" + cell.build_group)

    def build(self, cell: Cell) -> FakeBuilt:
        with self.lock:
            self.builds.append(cell.build_group)
        if cell.build_group in self.failing_groups:
            raise BuildError(f"make failed for {cell.build_group}")
        return FakeBuilt(self.build_key(cell), Path(f"/bin/{cell.build_group}"))

    def run(self, cell: Cell, built: FakeBuilt, log_path: Path) -> CellResult:
        with self.lock:
            self.runs.append(cell.identifier)
        assert built.key == self.build_key(cell)  # the cell got its own group's binary
        log_path.write_text(f"log of {cell.identifier}\n")
        outcome = self.verdicts.get(cell.identifier, "pass")
        if outcome == "crash":
            raise RuntimeError("harness bug")
        reason = "" if outcome == "pass" else f"{outcome} on purpose"
        return CellResult(cell, outcome, reason, checks=["checked"])  # type: ignore[arg-type]


def _table(version: Version) -> str | None:
    return "oauth64" if version.major == 6 else None


CELLS = generate([Version.parse("6.4.32"), Version.parse("6.4.33"), Version.parse("next")],
                 _table, distros=("bookworm",))


def test_builds_are_shared_per_group(tmp_path: Path) -> None:
    backend = RecordingBackend()
    run = run_matrix(CELLS, backend, jobs=2, cache=None, log_dir=tmp_path)
    assert sorted(backend.builds) == ["6.4.32-oauth64-bookworm", "6.4.33-oauth64-bookworm",
                                      "next-native-bookworm"]
    assert sorted(backend.runs) == sorted(c.identifier for c in CELLS)
    assert [r.cell for r in run.results] == CELLS  # input order kept
    assert run.ok and run.counts()["pass"] == len(CELLS)
    assert all(Path(r.log or "").read_text() == f"log of {r.identifier}\n" for r in run.results)
    assert all(r.binary == f"/bin/{r.cell.build_group}" for r in run.results)


def test_one_backend_session_spans_the_run(tmp_path: Path) -> None:
    """The backend's session (DockerBackend: its cells' containers) opens before the first
    cell, closes after the last; a run that fails its build still closes it."""
    cells = CELLS
    backend = RecordingBackend()
    run_matrix(cells, backend, jobs=2, log_dir=tmp_path)
    assert backend.sessions == ["open", f"closed after {len(cells)} runs"]
    failing = RecordingBackend(failing_groups={c.build_group for c in cells})
    run_matrix(cells, failing, jobs=2, log_dir=tmp_path)
    assert failing.sessions == ["open", "closed after 0 runs"]


def test_builds_run_in_jobs_slots_and_one_that_waits_lets_the_next_run(tmp_path: Path) -> None:
    """jobs=1: one build runs its steps at a time; one that waits for another (in
    slots.given_up, as for its family's first configure) lets the next build run meanwhile."""
    lock = threading.Lock()
    running: list[str] = []
    most = 0
    order: list[str] = []
    second_ran = threading.Event()

    def steps(group: str) -> None:
        nonlocal most
        with lock:
            running.append(group)
            most = max(most, len(running))
            order.append(group)
        time.sleep(0.05)  # long enough for builds without slots to overlap
        with lock:
            running.remove(group)

    class Waiting(RecordingBackend):
        def build(self, cell: Cell) -> FakeBuilt:
            group = cell.build_group
            if group == "6.4.32-oauth64-bookworm":
                with slots.given_up():
                    assert second_ran.wait(10), "the next build did not run meanwhile"
            steps(group)
            if group == "6.4.33-oauth64-bookworm":
                second_ran.set()
            return super().build(cell)

    run = run_matrix(CELLS, Waiting(), jobs=1, cache=None, log_dir=tmp_path)
    assert run.ok
    assert most == 1
    assert order[0] == "6.4.33-oauth64-bookworm"  # while the first one waited
    assert sorted(order) == ["6.4.32-oauth64-bookworm", "6.4.33-oauth64-bookworm",
                             "next-native-bookworm"]


def test_build_failure_fails_its_cells_only(tmp_path: Path) -> None:
    backend = RecordingBackend(failing_groups={"6.4.32-oauth64-bookworm"})
    run = run_matrix(CELLS, backend, jobs=2, cache=None, log_dir=tmp_path)
    bad = [r for r in run.results if r.outcome == "fail"]
    assert {r.cell.build_group for r in bad} == {"6.4.32-oauth64-bookworm"}
    assert all("make failed" in r.reason for r in bad)
    assert not any(i.startswith("6.4.32") for i in backend.runs)
    assert not run.ok
    assert run.builds["6.4.32-oauth64-bookworm"].startswith("fail")
    assert run.counts()["pass"] == len(CELLS) - len(bad)


def test_a_release_that_cannot_build_on_a_distro_is_skipped_unbuilt(tmp_path: Path) -> None:
    cells = generate([Version.parse("6.4.33"), Version.parse("next")], _table,
                     distros=("bullseye",))
    backend = RecordingBackend()
    run = run_matrix(cells, backend, jobs=2, cache=None, log_dir=tmp_path)
    skipped = [r for r in run.results if r.outcome == "skip"]
    assert {str(r.cell.version) for r in skipped} == {"next"}
    assert all("Autoconf 2.71" in r.reason for r in skipped)
    assert backend.builds == ["6.4.33-oauth64-bullseye"]  # next was not even tried
    assert run.ok and run.builds["next-native-bullseye"].startswith("skip")


def test_engine_trouble_during_build_is_an_error(tmp_path: Path) -> None:
    class NoEngine(RecordingBackend):
        def build(self, cell: Cell) -> FakeBuilt:
            raise EngineError("no Docker engine answers")

    run = run_matrix(CELLS, NoEngine(), jobs=2, cache=None, log_dir=tmp_path)
    assert {r.outcome for r in run.results} == {"error"}
    assert all("no Docker engine" in r.reason for r in run.results)


def test_crashing_cell_is_an_error_not_a_crash(tmp_path: Path) -> None:
    victim = CELLS[0].identifier
    backend = RecordingBackend(verdicts={victim: "crash"})
    run = run_matrix(CELLS, backend, jobs=2, cache=None, log_dir=tmp_path)
    by_id = {r.identifier: r for r in run.results}
    assert by_id[victim].outcome == "error" and "harness bug" in by_id[victim].reason
    assert "Traceback" in Path(by_id[victim].log or "").read_text()
    assert sum(r.outcome == "pass" for r in run.results) == len(CELLS) - 1


def test_result_cache_hit_and_miss_on_input_change(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "results")
    failing = CELLS[1].identifier
    first = RecordingBackend(verdicts={failing: "fail"})
    run1 = run_matrix(CELLS, first, cache=cache, log_dir=tmp_path / "l1")
    assert len(first.runs) == len(CELLS) and not any(r.cached for r in run1.results)

    # unchanged inputs: nothing is built or rerun, outcomes (including the failure) come back
    second = RecordingBackend(verdicts={failing: "fail"})
    run2 = run_matrix(CELLS, second, cache=cache, log_dir=tmp_path / "l2")
    assert second.runs == [] and second.builds == []
    assert all(r.cached for r in run2.results)
    assert [r.outcome for r in run2.results] == [r.outcome for r in run1.results]
    assert all(Path(r.log or "").read_text() == f"log of {r.identifier}\n" for r in run2.results)

    # one build's inputs change (new source commit / series / image): only its cells rerun
    third = RecordingBackend(build_keys={"next-native-bookworm": "key-changed"})
    run_matrix(CELLS, third, cache=cache, log_dir=tmp_path / "l3")
    assert third.builds == ["next-native-bookworm"]
    assert sorted(third.runs) == sorted(c.identifier for c in CELLS if c.version.branch)


def test_errors_are_not_cached(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "results")
    victim = CELLS[0].identifier
    run_matrix(CELLS, RecordingBackend(verdicts={victim: "error"}), cache=cache,
               log_dir=tmp_path / "l1")
    again = RecordingBackend()
    run_matrix(CELLS, again, cache=cache, log_dir=tmp_path / "l2")
    assert again.runs == [victim]


def test_result_key_depends_on_every_input() -> None:
    cell = CELLS[0]
    base = result_key(cell, "b1", "h1")
    assert base == result_key(cell, "b1", "h1")
    assert base != result_key(cell, "b2", "h1")
    assert base != result_key(cell, "b1", "h2")
    assert base != result_key(CELLS[1], "b1", "h1")
    assert len(harness_hash()) == 64


def test_corrupt_cache_entry_is_a_miss(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    key = result_key(CELLS[0], "b", "h")
    (tmp_path / f"{key}.json").write_text("{not json")
    assert cache.get(key) is None
    stored = cache.put(CellResult(CELLS[0], "pass", key=key))
    assert json.loads((tmp_path / f"{key}.json").read_text())["outcome"] == "pass"
    hit = cache.get(key)
    assert hit is not None and hit.cached and hit.outcome == stored.outcome


@pytest.mark.parametrize("jobs", [1, 3])
def test_job_counts(tmp_path: Path, jobs: int) -> None:
    backend = RecordingBackend()
    run = run_matrix(CELLS, backend, jobs=jobs, cache=None, log_dir=tmp_path)
    assert run.ok and len(backend.runs) == len(CELLS)


def test_exit_code_policy(tmp_path: Path) -> None:
    """0 all passed (skips included), 1 any cell failed, 7 none failed but some could not run."""
    from harness.errors import HarnessError

    passed = run_matrix(CELLS, RecordingBackend(), cache=None, log_dir=tmp_path / "a")
    assert passed.exit_code == 0
    errored = RecordingBackend(verdicts={CELLS[0].identifier: "crash"})
    assert run_matrix(CELLS, errored, cache=None, log_dir=tmp_path / "b").exit_code == 7
    assert HarnessError.exit_code == 7
    both = RecordingBackend(verdicts={CELLS[0].identifier: "crash", CELLS[1].identifier: "fail"})
    assert run_matrix(CELLS, both, cache=None, log_dir=tmp_path / "c").exit_code == 1


def test_ctrl_c_starts_nothing_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGINT while a cell runs: what is queued is dropped, the interrupt goes on up
    (the CLI turns it into exit 130)."""
    submitted: list[Future[object]] = []
    interrupted: list[str] = []
    cells_submitted: list[Future[object]] = []
    dropped = threading.Event()  # the other cell worker holds its cell until the queue is

    class Pool(ThreadPoolExecutor):
        def submit(self, fn: Callable[..., object], /, *args: object,
                   **kwargs: object) -> Future[object]:
            future = super().submit(fn, *args, **kwargs)
            submitted.append(future)
            if fn is runner._run_one:
                cells_submitted.append(future)
            return future

    class Interrupting(RecordingBackend):
        def build(self, cell: Cell) -> FakeBuilt:
            if self.builds:  # the first build is done at once, the next ones are still busy
                time.sleep(0.5)
            return super().build(cell)

        def run(self, cell: Cell, built: FakeBuilt, log_path: Path) -> CellResult:
            with self.lock:  # one SIGINT: a second one would break into the workers' join
                first = not interrupted
                interrupted.append(cell.identifier)
            if not first:
                dropped.wait(60)
            if first:  # the main thread waits for this cell; the rest is queued
                # once both cell workers have started (a SIGINT inside a thread's start
                # would leave that thread unjoined)
                for _ in range(6000):
                    if len(cells_submitted) > 2:
                        break
                    time.sleep(0.01)
                queued = [f for f in submitted if not f.running() and not f.done()]
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(6000):  # a deadline, not a timing: until the queue is dropped
                    if all(f.cancelled() for f in queued):
                        break
                    time.sleep(0.01)
                dropped.set()
            return super().run(cell, built, log_path)

    monkeypatch.setattr(runner, "ThreadPoolExecutor", Pool)
    backend = Interrupting()
    with pytest.raises(KeyboardInterrupt):
        run_matrix(CELLS, backend, jobs=1, cache=None, log_dir=tmp_path)
    # cells run on twice --jobs workers: at most the two running then finish
    assert 1 <= len(backend.runs) <= 2
    assert any(f.cancelled() for f in submitted)


def test_a_builds_daemon_cells_start_first(tmp_path: Path) -> None:
    """Daemon cells poll several times: started first, the last build's cells end together."""
    group = [c for c in CELLS if c.build_group == "6.4.33-oauth64-bookworm"]
    order = runner.longest_first(group)
    daemons = [c for c in group if c.daemon]
    assert len(daemons) == 2 and order[:2] == daemons
    assert sorted(order) == sorted(group)
    backend = RecordingBackend()
    run = run_matrix(group, backend, jobs=1, cache=None, log_dir=tmp_path)
    assert [r.cell for r in run.results] == group  # results keep the order of the cells
