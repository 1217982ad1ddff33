"""The patched fetchmail under test, and how a test starts it.

A fetchmail built in the harness's container links that image's OpenSSL; on a host whose libssl
is older it refuses every TLS connection ("older than headers").  So each fetchmail a test
starts runs in a container of the build image: host network (it reaches the mock servers and
Dovecot on 127.0.0.1), the test's directories mounted at the same paths, the host's uid (and
its passwd and group files), tini reaping what a daemon leaves.  The container lives for the
session, so a daemon that detaches keeps running until `quit`.  A prebuilt host binary
($FETCHMAIL_PATCHED_BINARY) runs on the host instead, the same way.  Every run gets a private
FETCHMAILHOME (= HOME) and --pidfile: nothing of the user's is seen nor signalled.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# a sanitizer report ends the ASan+UBSan build with this status, which no test expects
SANITIZER_EXIT = 86
SANITIZERS = {
    "ASAN_OPTIONS": f"detect_leaks=0:exitcode={SANITIZER_EXIT}",
    "UBSAN_OPTIONS": f"halt_on_error=1:exitcode={SANITIZER_EXIT}:print_stacktrace=1",
}


@dataclass
class FetchmailBox:
    """`run`/`popen` start the patched fetchmail: in `container`, or on the host (None)."""

    container: str | None
    binary: Path
    flavour: str  # "plain" or "asan"

    @classmethod
    def start(cls, image: str, binary: Path, flavour: str, mounts: Sequence[Path]) -> FetchmailBox:
        volumes = ["-v", "/etc/passwd:/etc/passwd:ro", "-v", "/etc/group:/etc/group:ro"]
        for path in dict.fromkeys(str(p.resolve()) for p in mounts):
            volumes += ["-v", f"{path}:{path}"]
        cid = subprocess.run(
            ["docker", "run", "-d", "--rm", "--init", "--network", "host",
             "--label", "fmh-test=patches", *volumes, image, "sleep", "infinity"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        return cls(cid, binary, flavour)

    @classmethod
    def on_host(cls, binary: Path) -> FetchmailBox:
        return cls(None, binary, "plain")

    def stop(self) -> None:
        if self.container is not None:
            subprocess.run(["docker", "rm", "-f", self.container], capture_output=True,
                           check=False)

    def _exec(self, argv: Sequence[str], *, home: Path | None, cwd: Path | None,
              env: Mapping[str, str] | None, tty: bool = False) -> list[str]:
        variables = dict(SANITIZERS)
        if home is not None:
            variables |= {"HOME": str(home), "FETCHMAILHOME": str(home)}
        variables |= dict(env or {})
        if self.container is None:
            where = ["-C", str(cwd)] if cwd is not None else []
            return ["env", *where, *(f"{k}={v}" for k, v in variables.items()), *argv]
        cmd = ["docker", "exec", "-i", "-u", f"{os.getuid()}:{os.getgid()}"]
        if tty:
            cmd.append("-t")
        if cwd is not None:
            cmd += ["-w", str(cwd)]
        for key, value in variables.items():
            cmd += ["-e", f"{key}={value}"]
        return [*cmd, self.container, *argv]

    def command(self, args: Sequence[str], *, home: Path, cwd: Path | None = None,
                env: Mapping[str, str] | None = None, tty: bool = False) -> list[str]:
        """The host command that runs fetchmail, with a private --pidfile (its lock) and
        FETCHMAILHOME in `home`, whatever the test passes."""
        argv = [str(self.binary), "--pidfile", str(home / "fetchmail.pid"), *args]
        return self._exec(argv, home=home, cwd=cwd or home, env=env, tty=tty)

    def run(self, args: Sequence[str], *, home: Path, cwd: Path | None = None,
            env: Mapping[str, str] | None = None, timeout: float = 120,
            stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
        """Run fetchmail to its end; TimeoutExpired if it does not end in `timeout` seconds."""
        return subprocess.run(self.command(args, home=home, cwd=cwd, env=env), stdin=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def popen(self, args: Sequence[str], *, home: Path, cwd: Path | None = None,
              env: Mapping[str, str] | None = None, tty: bool = False,
              stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[str]:
        """Start fetchmail (e.g. a daemon with -N); its output joined on stdout."""
        return subprocess.Popen(self.command(args, home=home, cwd=cwd, env=env, tty=tty),
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    def wrapper_script(self, home: Path) -> str:
        """A `fetchmail` for PATH that runs this fetchmail (for fetchmailconf)."""
        return "#!/bin/sh\nexec " + shlex.join(self.command([], home=home)) + ' "$@"\n'

    def quit(self, home: Path) -> subprocess.CompletedProcess[str]:
        """`fetchmail --quit` on the daemon that holds `home`'s pidfile."""
        return self.run(["--quit"], home=home, timeout=60)

    def version(self) -> str:
        """`fetchmail --version` (no rc file, no lock)."""
        done = subprocess.run(self._exec([str(self.binary), "--version"], home=None, cwd=None,
                                         env=None), capture_output=True, text=True, timeout=60)
        return done.stdout + done.stderr

    def shell(self, script: str) -> subprocess.CompletedProcess[str]:
        """A shell command where fetchmail runs (e.g. building a test helper with its gcc)."""
        return subprocess.run(self._exec(["sh", "-c", script], home=None, cwd=None, env=None),
                              capture_output=True, text=True, check=True, timeout=120)
