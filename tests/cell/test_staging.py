"""A cell's files reach its container through IN; trouble setting it up is the
infrastructure's, and a daemon that ends early is reported when it ends."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from harness.cell.boxes import BoxPool
from harness.cell.checks import CellLog, CheckFailed
from harness.cell.model import Cell
from harness.cell.rcfile import IN, WORK, rcfile
from harness.cell.run import (
    SETUP_FAILED,
    _check_setup,
    _command,
    _Daemon,
    _run_with_timeout,
    _stage,
)
from harness.cell.world import open_world
from harness.errors import HarnessError

pytestmark = pytest.mark.docker
CELL = Cell.parse("6.4.33-oauth64-bookworm-imap-xoauth2-tls")


def test_the_files_arrive_as_fetchmail_wants_them_and_leftovers_are_an_error(
    docker_client: docker.DockerClient, base_image: str, tmp_path: Path
) -> None:
    binary = tmp_path / "fetchmail"
    binary.write_text("#!/bin/sh\necho fetchmail \"$@\"\n")
    with open_world(CELL, CellLog(tmp_path / "cell.log")) as world, \
            BoxPool(docker_client, network_mode="none") as pool, \
            pool.borrow(base_image) as (box, files, _mail):
        token = world.refresher.refresh()
        program, setup = _stage(files, binary, world, rcfile(CELL, world.server.port, keep=False))
        output: list[str] = []
        show = f'stat -c "%u %a %n" {WORK}/fetchmailrc {WORK}/deliver {program}; cat {IN}/token'
        code = _run_with_timeout(box, setup, ["sh", "-c", show], output, 30)
        text = "".join(output)
        assert code == 0, text
        assert f"0 600 {WORK}/fetchmailrc" in text  # root's, as fetchmail wants its rc file
        assert f"0 700 {WORK}/deliver" in text and f"0 700 {WORK}/fetchmail" in text
        assert token in text  # the passwordfile is read where the host rotates it
        again: list[str] = []  # WORK is still there: the container was not emptied
        code = _run_with_timeout(box, setup, [program], again, 30)
        assert code == SETUP_FAILED and "fetchmail" not in "".join(again)
        with pytest.raises(HarnessError, match="could not set the cell up"):
            _check_setup(code, "".join(again))


def test_a_daemon_that_ends_while_awaited_is_reported_then(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    with BoxPool(docker_client, network_mode="none") as pool, \
            pool.borrow(base_image) as (box, _files, _mail):
        gone = _Daemon(box, _command("true", ["sh", "-c", "echo 'no mailservers'; exit 6"]),
                       "gone")
        with pytest.raises(CheckFailed, match="fetchmail exited 6 while waiting for mail"):
            gone.wait_until(lambda: False, "mail")
        unset = _Daemon(box, _command("false", ["true"]), "unset")
        with pytest.raises(HarnessError, match="could not set the cell up"):
            unset.wait_until(lambda: False, "mail")
