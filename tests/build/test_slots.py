"""Build slots: at most `jobs` builds run steps at once, a build waiting for another one
gives its slot to the next, and slots go to the earliest build of the run first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.build import slots
from harness.build.reuse import Store

WAIT = 10.0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_no_more_builds_at_once_than_slots_and_the_earliest_waiting_goes_first() -> None:
    cores = slots.Slots(1)
    order: list[int] = []
    release = threading.Event()

    def build(rank: int) -> None:
        with slots.holding(cores, rank):
            order.append(rank)
            if rank == 0:
                release.wait(WAIT)

    first = threading.Thread(target=build, args=(0,))
    first.start()
    _until(lambda: order == [0], "the first build")
    later = [threading.Thread(target=build, args=(rank,)) for rank in (3, 1, 2)]
    for t in later:
        t.start()
    _until(lambda: sorted(cores._waiting) == [1, 2, 3], "three builds waiting")
    assert order == [0]  # one slot: the others wait
    release.set()
    for t in (first, *later):
        t.join(WAIT)
    assert order == [0, 1, 2, 3]


def test_a_build_waiting_for_the_first_configure_lets_a_third_one_run(tmp_path: Path) -> None:
    store = Store(tmp_path)
    seed = tmp_path / "family.cache"
    cores = slots.Slots(2)
    events: list[str] = []
    configured = threading.Event()
    third_ran = threading.Event()

    def first() -> None:
        with slots.holding(cores, 0), store.first_configure(seed) as alone:
            assert alone
            events.append("first configures")
            third_ran.wait(WAIT)  # still configuring when the third build runs
            seed.write_text("cache")
            configured.set()

    def second() -> None:
        with slots.holding(cores, 1):
            _until(lambda: "first configures" in events, "the first configure")
            events.append("second waits")
            with store.first_configure(seed) as alone:  # waits, without its slot
                assert not alone and seed.is_file()
                events.append("second configures from the cache")

    def third() -> None:
        with slots.holding(cores, 2):
            events.append("third runs")
            third_ran.set()

    threads = [threading.Thread(target=f) for f in (first, second)]
    for t in threads:
        t.start()
    _until(lambda: "first configures" in events, "the first configure")
    _until(lambda: "second waits" in events and cores._free == 1,
           "the second build to give its slot up")
    threads.append(threading.Thread(target=third))
    threads[-1].start()
    for t in threads:
        t.join(WAIT)
    assert events == ["first configures", "second waits", "third runs",
                      "second configures from the cache"]


def test_between_steps_a_build_hands_its_slot_to_an_earlier_one_that_waits() -> None:
    cores = slots.Slots(1)
    events: list[str] = []
    late_started = threading.Event()

    def late() -> None:
        with slots.holding(cores, 5):
            events.append("late: step 1")
            late_started.set()
            _until(lambda: cores._waiting == [0], "the early build to wait")
            slots.checkpoint()  # the early build goes first
            events.append("late: step 2")

    def early() -> None:
        late_started.wait(WAIT)
        events.append("early waits")
        with slots.holding(cores, 0):
            events.append("early runs")

    threads = [threading.Thread(target=late), threading.Thread(target=early)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert events == ["late: step 1", "early waits", "early runs", "late: step 2"]


def test_outside_a_run_nothing_is_held_and_nothing_waits() -> None:
    with slots.given_up():  # a build outside the runner (fetchmail-harness build)
        pass
    slots.checkpoint()
