"""A container that always goes away; commands stream their output and keep their exit code."""

from __future__ import annotations

import codecs
import logging
import shlex
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import docker
import docker.errors

from harness.archives import extract
from harness.errors import HarnessError

log = logging.getLogger(__name__)

StreamCallback = Callable[[str], None]


class CommandFailed(HarnessError):
    """A command in a container exited non-zero; `.returncode` holds its status."""

    def __init__(self, cmd: Sequence[str] | str, returncode: int, output: str = "") -> None:
        self.cmd = cmd
        self.returncode = returncode
        self.output = output
        shown = cmd if isinstance(cmd, str) else shlex.join(cmd)
        super().__init__(f"`{shown}` exited with status {returncode}")


class Container:
    """`with Container(client, image, **opts) as c:` — started on enter, removed on exit.

    opts go to docker's containers.run (network_mode, volumes, environment, ...). The
    container idles on `sleep infinity`; work is done with run()/check()/put()/get().
    """

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        *,
        command: Sequence[str] = ("sleep", "infinity"),
        **opts: Any,
    ) -> None:
        self.client = client
        self.image = image
        self.command = list(command)
        self.opts = opts
        self._container: Any = None

    @property
    def id(self) -> str:
        if self._container is None:
            raise HarnessError("container is not running (use it as a context manager)")
        return str(self._container.id)

    def __enter__(self) -> Container:
        return self.start()

    def start(self) -> Container:
        """Start it (what `with` does); whoever calls this must call remove()."""
        self._container = self.client.containers.run(
            self.image, self.command, detach=True, **self.opts
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def remove(self) -> None:
        """Kill and delete the container; safe to call twice, never masks the real error."""
        container, self._container = self._container, None
        if container is None:
            return
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # e.g. removal already in progress
            log.warning("could not remove container %s: %s", container.id[:12], exc)

    def run(
        self,
        cmd: Sequence[str] | str,
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        user: str = "",
        stream: StreamCallback | None = None,
    ) -> int:
        """Run `cmd` (a list, or a string for sh -c); stream output to `stream`; its exit code.

        stderr is joined to stdout inside the container (one pipe, `2>&1`), so the output
        arrives in the order it was written: docker's separate stdout and stderr pipes
        would not keep that order.
        """
        shown = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        argv = ["sh", "-c", 'exec 2>&1; exec "$@"', "sh", *shown]
        api = self.client.api
        exec_id = api.exec_create(
            self.id, argv, stdout=True, stderr=True, workdir=workdir,
            environment=dict(env or {}), user=user,
        )["Id"]
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for chunk in api.exec_start(exec_id, stream=True):
            text = decoder.decode(chunk)
            if text and stream is not None:
                stream(text)
        tail = decoder.decode(b"", final=True)
        if tail and stream is not None:
            stream(tail)
        for _ in range(100):  # the stream can end a moment before the exit code is recorded
            info = api.exec_inspect(exec_id)
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            time.sleep(0.05)
        raise HarnessError(f"no exit code for `{shown}` in container {self.id[:12]}")

    def check(
        self,
        cmd: Sequence[str] | str,
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        user: str = "",
        stream: StreamCallback | None = None,
    ) -> str:
        """Run `cmd`; its output, or CommandFailed (carrying the exit code and output)."""
        parts: list[str] = []

        def collect(text: str) -> None:
            parts.append(text)
            if stream is not None:
                stream(text)

        code = self.run(cmd, workdir=workdir, env=env, user=user, stream=collect)
        output = "".join(parts)
        if code != 0:
            raise CommandFailed(cmd, code, output)
        return output

    def put(self, local_path: Path | str, dest: str) -> None:
        """Copy a local file or directory to exactly `dest` in the container, owned by root
        there with the local modes. One request: the engine makes the missing parents of
        `dest` (0755, root) as `mkdir -p` would."""
        local = Path(local_path)
        target = PurePosixPath(dest)
        if not target.is_absolute() or ".." in target.parts or target == PurePosixPath("/"):
            raise HarnessError(f"put wants an absolute path below /, not {dest!r}")

        def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            return info

        with tempfile.TemporaryFile() as buf:
            with tarfile.open(fileobj=buf, mode="w") as tar:
                tar.add(local, arcname=str(target.relative_to("/")), filter=as_root)
            buf.seek(0)
            if not self.client.api.put_archive(self.id, "/", buf):
                raise HarnessError(f"could not copy {local} to {dest} in the container")

    def get(self, src: str, local_dest: Path | str) -> Path:
        """Copy a file or directory `src` out of the container to exactly `local_dest`."""
        dest = Path(local_dest)
        try:
            chunks, _stat = self.client.api.get_archive(self.id, src)
        except docker.errors.NotFound as exc:
            raise HarnessError(f"no {src} in the container") from exc
        with tempfile.TemporaryFile() as buf:
            for chunk in chunks:
                buf.write(chunk)
            buf.seek(0)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
                with tarfile.open(fileobj=buf) as tar:
                    extract(tar, Path(tmp))
                entries = list(Path(tmp).iterdir())
                if len(entries) != 1:
                    raise HarnessError(f"unexpected archive for {src}: {entries}")
                entries[0].replace(dest)
        return dest
