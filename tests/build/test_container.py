"""Container: exit codes, streaming, put/get, and removal on every way out."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest

from harness.build.container import CommandFailed, Container
from harness.build.engine import ensure_engine
from harness.errors import EngineError, HarnessError
from tests.helpers.containers import exists

pytestmark = pytest.mark.docker


def test_exit_codes_are_recovered(docker_client: docker.DockerClient, base_image: str) -> None:
    with Container(docker_client, base_image, network_mode="none") as box:
        assert box.run(["true"]) == 0
        assert box.run("exit 7") == 7
        assert box.run(["sh", "-c", "kill -9 $$"]) == 137
        with pytest.raises(CommandFailed, match="exited with status 3") as info:
            box.check("echo partial; exit 3")
        assert info.value.returncode == 3 and info.value.output == "partial\n"
        assert info.value.exit_code == HarnessError.exit_code  # a HarnessError like any other


def test_output_streams_in_order_with_env_workdir_and_user(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    seen: list[str] = []
    with Container(docker_client, base_image) as box:
        code = box.run(
            'for i in 1 2 3; do echo "out$i $GREETING"; sleep 0.1; done; echo err >&2; pwd; id -u',
            workdir="/tmp", env={"GREETING": "héllo"}, user="nobody", stream=seen.append,
        )
    text = "".join(seen)
    assert code == 0
    assert text.splitlines() == ["out1 héllo", "out2 héllo", "out3 héllo", "err", "/tmp", "65534"]
    assert len(seen) > 1  # it arrived in pieces, not at the end


def test_put_and_get_files_and_directories(
    docker_client: docker.DockerClient, base_image: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "data.txt").write_text("payload\n")
    script = src / "run.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    secret = src / "sub" / "secret"
    secret.write_text("s\n")
    secret.chmod(0o600)
    if os.geteuid() == 0:  # as root, give it another owner; else it has ours: not root either
        os.chown(secret, 1234, 1234)
    with Container(docker_client, base_image) as box:
        box.put(src, "/work/tree")  # /work does not exist: made as mkdir -p would
        box.put(src / "sub" / "data.txt", "/etc/renamed.txt")
        assert box.check(["stat", "-c", "%u:%g %a", "/work", "/work/tree/sub/secret",
                          "/work/tree/run.sh"]).split("\n")[:3] == ["0:0 755", "0:0 600",
                                                                     "0:0 755"]
        with pytest.raises(HarnessError, match="absolute path"):
            box.put(script, "relative/run.sh")
        assert box.check(["/work/tree/run.sh"]) == "ran\n"
        assert box.check(["cat", "/etc/renamed.txt", "/work/tree/sub/data.txt"]) == "payload\n" * 2
        box.check("echo made > /work/tree/new.txt")
        back = box.get("/work/tree", tmp_path / "back")
        single = box.get("/etc/renamed.txt", tmp_path / "one" / "file.txt")
    assert (back / "new.txt").read_text() == "made\n"
    assert (back / "sub" / "data.txt").read_text() == "payload\n"
    assert os.access(back / "run.sh", os.X_OK)
    assert single.read_text() == "payload\n"


def test_removed_after_normal_exit_error_and_interrupt(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    ids = []
    with Container(docker_client, base_image) as box:
        ids.append(box.id)
        assert exists(docker_client, box.id)
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), Container(docker_client, base_image) as box:
            ids.append(box.id)
            raise exc
    assert len(ids) == 3 and not any(exists(docker_client, cid) for cid in ids)


def test_using_a_removed_container_is_an_error(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    box = Container(docker_client, base_image)
    with box:
        pass
    with pytest.raises(Exception, match="not running"):
        box.run(["true"])


def test_engine_error_names_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EngineError, match=r"no Docker engine answers.*fetchmail-harness setup"):
        ensure_engine()
