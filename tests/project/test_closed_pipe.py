"""`… | head`: a reader that goes away ends either CLI quietly, whatever the command prints."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CLOSED_PIPE = 141  # 128 + SIGPIPE


def _with_reader_gone(argv: list[str], stdin: bytes = b"", *, unbuffered: bool = False
                      ) -> subprocess.CompletedProcess[bytes]:
    """Run argv with a stdout pipe whose read end is already closed: every write fails (at
    the print with unbuffered output, else when the buffer is flushed)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(argv, input=stdin, stdout=write_end, stderr=subprocess.PIPE,
                              env=env, timeout=300)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [
    ["harness", "--help"],
    ["harness", "build", "--help"],
    ["harness", "versions", "--table"],
    ["tokens.cli", "--help"],
    ["tokens.cli", "example", "systemd"],
    ["tokens.cli", "totp"],  # the secret comes from stdin
])
def test_a_closed_pipe_ends_quietly(args: list[str]) -> None:
    module, *rest = args
    proc = _with_reader_gone([sys.executable, "-m", module, *rest], b"JBSWY3DPEHPK3PXP\n")
    assert proc.stderr.decode() == "" and proc.returncode == CLOSED_PIPE


@pytest.mark.parametrize("unbuffered", [False, True])
def test_matrix_list_into_a_closed_pipe(fetchmail_upstream: str, unbuffered: bool) -> None:
    proc = _with_reader_gone([sys.executable, "-m", "harness", "matrix", "--list",
                              "--upstream", fetchmail_upstream], unbuffered=unbuffered)
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == CLOSED_PIPE


def test_matrix_list_head_keeps_what_head_wanted(fetchmail_upstream: str) -> None:
    """The README's case, through a real shell pipe: head prints its lines, no traceback."""
    proc = subprocess.run(
        f"{sys.executable} -m harness matrix --list --upstream '{fetchmail_upstream}' | head -3",
        shell=True, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stdout.splitlines()) == 3 and proc.stdout.startswith("# build ")
