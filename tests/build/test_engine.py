"""The engine starter's recovery from what a killed dockerd leaves behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.build.engine import _running, remove_stale_pid_files


def test_stale_pid_file_is_removed_live_and_unreadable_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid is gone
    stale, live, junk, missing = (tmp_path / n for n in ("stale", "live", "junk", "missing"))
    stale.write_text(f"{dead.pid}\n")
    live.write_text(f"{os.getpid()}\n")
    junk.write_text("not a pid\n")
    files = tuple(str(p) for p in (stale, live, junk, missing))
    assert remove_stale_pid_files(files) == [str(stale)]
    assert not stale.exists() and live.exists() and junk.exists()


def test_zombie_counts_as_gone(tmp_path: Path) -> None:
    zombie = subprocess.Popen(["true"])
    # not waited for yet: once it exits it is a zombie, which must not block a restart
    for _ in range(200):
        if Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        subprocess.run(["sleep", "0.01"], check=True)
    pid_file = tmp_path / "docker.pid"
    pid_file.write_text(str(zombie.pid))
    try:
        assert remove_stale_pid_files((str(pid_file),)) == [str(pid_file)]
    finally:
        zombie.wait()


def test_running_sees_live_processes_by_exact_name() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert _running("sleep")
        assert not _running("sle")
    finally:
        sleeper.kill()
        sleeper.wait()
