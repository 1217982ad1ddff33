"""The cells' container pool: lent to one cell at a time, given back emptied, all removed."""

from __future__ import annotations

import threading
from pathlib import Path

import docker
import pytest

from harness.cell.boxes import BoxPool
from harness.cell.rcfile import IN, OUT, WORK
from harness.errors import HarnessError
from tests.helpers.containers import exists

pytestmark = pytest.mark.docker
PROCESSES = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"


def test_a_container_comes_back_emptied_for_the_next_cell(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    with BoxPool(docker_client, network_mode="none") as pool:
        with pool.borrow(base_image) as (box, files, mail):
            first, first_dirs = box.id, (files, mail)
            (files / "token").write_text("token\n")  # handed over from the host
            box.check(f"mkdir -p {WORK} && cp {IN}/token {WORK}/")
            box.check(f"echo mail > {OUT}/0001.eml")  # what the MDA delivers, seen from here
            assert (mail / "0001.eml").read_text() == "mail\n"
            box.check("nohup sleep 300 >/dev/null 2>&1 &")  # a daemon the cell left running
            assert "sleep 300" in box.check(PROCESSES)
        with pool.borrow(base_image) as (box, files, mail):
            assert box.id == first and (files, mail) == first_dirs  # the same, lent again
            assert box.run(["test", "-e", WORK]) != 0  # the last cell's files are gone
            assert not list(files.iterdir()) and not list(mail.iterdir())  # its IN and mail
            assert "sleep 300" not in box.check(PROCESSES)  # and what it started
    assert not exists(docker_client, first)
    assert not any(d.exists() for d in first_dirs)  # removed with its container


def test_cells_at_once_get_their_own_containers_and_close_removes_all(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    pool = BoxPool(docker_client, network_mode="none")
    ids: list[str] = []
    outs: list[Path] = []
    both = threading.Barrier(2, timeout=60)

    def cell() -> None:
        with pool.borrow(base_image) as (box, files, mail):
            ids.append(box.id)
            outs.extend((files, mail))
            both.wait()  # both hold one at the same time

    threads = [threading.Thread(target=cell) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 2 and all(exists(docker_client, i) for i in ids)
    assert len(set(outs)) == 4  # each its own directories
    pool.close()
    assert not any(exists(docker_client, i) for i in ids)
    assert not any(out.exists() for out in outs)
    with pytest.raises(HarnessError, match="closed"), pool.borrow(base_image):
        pass


def test_one_that_cannot_be_emptied_is_removed_and_idle_ones_are_bounded(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    with BoxPool(docker_client, max_idle=1, network_mode="none") as pool:
        with pool.borrow(base_image) as (box, broken_files, broken_mail):
            broken = box.id
            box.remove()  # gone under the cell: it cannot be emptied
        assert not broken_files.exists() and not broken_mail.exists()
        with pool.borrow(base_image) as (a, _, _), pool.borrow(base_image) as (b, _, _):
            assert broken not in (a.id, b.id)
            kept = [a.id, b.id]
        # both came back emptied, but one idle container is all the pool keeps
        assert sum(exists(docker_client, i) for i in kept) == 1


def test_a_pool_refuses_the_hosts_process_namespace(docker_client: docker.DockerClient) -> None:
    with pytest.raises(HarnessError, match="own process namespace"):
        BoxPool(docker_client, pid_mode="host")
