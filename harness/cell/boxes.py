"""Running containers lent to one cell at a time.

Starting and removing a container costs the engine more than a one-shot cell's own work, so
a matrix run keeps its cells' containers: a cell borrows an idle one of its image (a new one
when none is idle) and gives it back emptied: every process it started killed, WORK removed,
OUT emptied. A container that cannot be emptied is removed instead; so are the idle ones
beyond `max_idle`, the longest idle first, and all of them when the pool closes.

Each container has a host directory of its own bind-mounted at SHARED: the cell writes its
files into IN and reads and counts its mail in OUT from the host, without a round trip to
the engine (which shares the host's filesystem, as for the builds' ccache).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import docker

from harness import paths
from harness.build.container import Container
from harness.cell.rcfile import IN, OUT, SHARED, WORK
from harness.errors import HarnessError


class Lent(NamedTuple):
    """A lent container and the host side of its IN and OUT."""

    box: Container
    files: Path
    mail: Path


# kill(-1) signals every process of the container but the caller and its init (sleep)
EMPTY = f"kill -9 -1 2>/dev/null; rm -rf {WORK} && find {IN} {OUT} -mindepth 1 -delete"


class BoxPool:
    """`with BoxPool(client, network_mode="host") as pool:`, then
    `with pool.borrow(image) as (box, files, mail):` (the host sides of IN and OUT)."""

    def __init__(self, client: docker.DockerClient, max_idle: int = 8, **opts: Any) -> None:
        if opts.get("pid_mode") == "host":  # EMPTY would then kill the host's processes
            raise HarnessError("the cells' containers need their own process namespace")
        self.client, self.max_idle, self.opts = client, max_idle, opts
        self._lock = threading.Lock()
        self._idle: list[tuple[str, Container]] = []  # (image, box), longest idle first
        self._lent: set[Container] = set()
        self._shared: dict[Container, Path] = {}
        self._closed = False

    def __enter__(self) -> BoxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def borrow(self, image: str) -> Iterator[Lent]:
        box = self._take(image)
        shared = self._shared[box]
        try:
            yield Lent(box, shared / "in", shared / "out")
        finally:
            self._give_back(image, box)

    def _take(self, image: str) -> Container:
        with self._lock:
            if self._closed:
                raise HarnessError("the cells' container pool is closed")
            for i, (idle_image, box) in enumerate(self._idle):
                if idle_image == image:
                    del self._idle[i]
                    self._lent.add(box)
                    return box
        shared = Path(tempfile.mkdtemp(prefix="fmh-box-", dir=paths.cache_dir()))
        (shared / "in").mkdir()
        (shared / "out").mkdir()
        volumes = {**self.opts.get("volumes", {}), str(shared): {"bind": SHARED, "mode": "rw"}}
        box = Container(self.client, image, **{**self.opts, "volumes": volumes})
        with self._lock:
            self._lent.add(box)  # before it starts: close() meanwhile still removes it
            self._shared[box] = shared
        try:
            box.start()
        except BaseException:
            with self._lock:
                self._lent.discard(box)
            self._remove(box)
            raise
        return box

    def _give_back(self, image: str, box: Container) -> None:
        try:
            emptied = box.run(EMPTY) == 0
        except (HarnessError, docker.errors.DockerException):
            emptied = False
        evicted: list[Container] = []
        with self._lock:
            self._lent.discard(box)
            if emptied and not self._closed:
                self._idle.append((image, box))
                while len(self._idle) > self.max_idle:
                    evicted.append(self._idle.pop(0)[1])
            else:
                evicted.append(box)
        for old in evicted:
            self._remove(old)

    def close(self) -> None:
        """Remove every container, lent or idle (a cell still running loses its own)."""
        with self._lock:
            self._closed = True
            boxes = [box for _, box in self._idle] + list(self._lent)
            self._idle, self._lent = [], set()
        for box in boxes:
            self._remove(box)

    def _remove(self, box: Container) -> None:
        box.remove()
        with self._lock:
            shared = self._shared.pop(box, None)
        if shared is not None:  # the MDA's files are root's, the directories the harness user's
            shutil.rmtree(shared, ignore_errors=True)
