"""Running containers lent to one cell at a time.

Starting and removing a container costs the engine more than a one-shot cell's own work, so
a matrix run keeps its cells' containers: a cell borrows an idle one of its image (a new one
when none is idle) and gives it back emptied: every process it started killed, WORK removed,
OUT emptied. A container that cannot be emptied is removed instead; so are the idle ones
beyond `max_idle`, the longest idle first, and all of them when the pool closes.

Each container has a host directory of its own bind-mounted at OUT (where a cell's MDA
delivers): the cell reads and counts its mail there, without a round trip to the engine
(the engine shares the host's filesystem, as for the builds' ccache).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker

from harness import paths
from harness.build.container import Container
from harness.cell.rcfile import OUT, WORK
from harness.errors import HarnessError

Lent = tuple[Container, Path]  # a lent container and the host side of its OUT

# kill(-1) signals every process of the container but the caller and its init (sleep)
EMPTY = f"kill -9 -1 2>/dev/null; rm -rf {WORK} && find {OUT} -mindepth 1 -delete"


class BoxPool:
    """`with BoxPool(client, network_mode="host") as pool:`, then
    `with pool.borrow(image) as (box, out):` (`out`: the host side of the box's OUT)."""

    def __init__(self, client: docker.DockerClient, max_idle: int = 8, **opts: Any) -> None:
        if opts.get("pid_mode") == "host":  # EMPTY would then kill the host's processes
            raise HarnessError("the cells' containers need their own process namespace")
        self.client, self.max_idle, self.opts = client, max_idle, opts
        self._lock = threading.Lock()
        self._idle: list[tuple[str, Container]] = []  # (image, box), longest idle first
        self._lent: set[Container] = set()
        self._out: dict[Container, Path] = {}
        self._closed = False

    def __enter__(self) -> BoxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def borrow(self, image: str) -> Iterator[Lent]:
        box = self._take(image)
        try:
            yield box, self._out[box]
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
        out = Path(tempfile.mkdtemp(prefix="fmh-box-", dir=paths.cache_dir()))
        volumes = {**self.opts.get("volumes", {}), str(out): {"bind": OUT, "mode": "rw"}}
        box = Container(self.client, image, **{**self.opts, "volumes": volumes})
        with self._lock:
            self._lent.add(box)  # before it starts: close() meanwhile still removes it
            self._out[box] = out
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
            out = self._out.pop(box, None)
        if out is not None:  # the MDA's files are root's, the directory the harness user's
            shutil.rmtree(out, ignore_errors=True)
