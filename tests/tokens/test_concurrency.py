"""Many refreshers at once: exactly one HTTP refresh; readers never see a partial file; SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.tokens_cli import Account, popen_cli

REFRESHES = "token:refresh_token"


def _reader(path: object, seen: set[bytes], stop: threading.Event) -> None:
    while not stop.is_set():
        seen.add(path.read_bytes())  # type: ignore[attr-defined]


def test_fifty_concurrent_refreshers_one_refresh(
    account: Account, provider: MockOAuthProvider
) -> None:
    provider.access_token_bytes = 300_000  # big tokens: a non-atomic write would show
    account.seed()
    procs0 = popen_cli("-c", str(account.config), "refresh")
    assert procs0.wait(60) == 0
    old = account.access_file.read_bytes()
    account.age_state(100000)  # expired: every process wants to refresh
    provider.reset_counts()
    provider.inject("token", "delay", delay=0.5)  # widen the race window

    seen: set[bytes] = set()
    stop = threading.Event()
    reader = threading.Thread(target=_reader, args=(account.access_file, seen, stop))
    reader.start()
    try:
        procs = [popen_cli("-c", str(account.config), "refresh") for _ in range(50)]
        codes = [p.wait(180) for p in procs]
        errors = [p.stderr.read() for p in procs if p.returncode]  # type: ignore[union-attr]
        for p in procs:
            p.stdin.close()  # type: ignore[union-attr]
            p.stdout.close()  # type: ignore[union-attr]
            p.stderr.close()  # type: ignore[union-attr]
    finally:
        stop.set()
        reader.join()
    assert codes == [0] * 50, errors
    assert provider.count(REFRESHES) == 1
    new = account.access_file.read_bytes()
    assert new != old
    assert seen <= {old, new}, f"reader saw partial content: {seen - {old, new}!r}"
    assert provider.is_active(new.decode().strip())
    leftovers = [p.name for p in account.dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def _signature(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _kill_when_writing(proc: subprocess.Popen[str], path: Path) -> None:
    """SIGKILL the moment a write to `path` starts (a temp file appears or `path` changes)."""
    before = _signature(path)
    prefix = f".{path.name}."
    while proc.poll() is None:
        if _signature(path) != before or any(
            name.startswith(prefix) for name in os.listdir(path.parent)
        ):
            break
    proc.send_signal(signal.SIGKILL)


def test_sigkill_never_leaves_partial_token(account: Account, provider: MockOAuthProvider) -> None:
    provider.access_token_bytes = 300_000  # big tokens: a non-atomic write would show
    account.seed()
    assert popen_cli("-c", str(account.config), "refresh").wait(60) == 0
    rng = random.Random(1234)
    outcomes: set[str] = set()
    for attempt in range(24):
        before = account.access_file.read_bytes()
        proc = popen_cli("-c", str(account.config), "refresh", "--force")
        if attempt % 2:
            _kill_when_writing(proc, account.access_file)  # in the middle of the writes
        else:
            time.sleep(rng.uniform(0.0, 0.6))  # anywhere: startup, lock, HTTP, writes
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()  # type: ignore[union-attr]
        after = account.access_file.read_bytes()
        text = after.decode()
        assert after == before or (
            text.endswith("\n") and text.count("\n") == 1 and provider.is_active(text.strip())
        ), f"damaged passwordfile ({len(after)} bytes, attempt {attempt})"
        outcomes.add("old" if after == before else "new")
    # after all the killing, a normal run still works (lock released, temps cleaned)
    done = popen_cli("-c", str(account.config), "refresh", "--force")
    assert done.wait(60) == 0
    for stream in (done.stdin, done.stdout, done.stderr):
        stream.close()  # type: ignore[union-attr]
    assert provider.is_active(account.access_file.read_text().strip())
    assert [p for p in account.dir.iterdir() if p.name.endswith(".tmp")] == []
    print(f"SIGKILL outcomes seen: {sorted(outcomes)}")
