"""The Cyrus SASL XOAUTH2 client plugin postfix relays with, built from its git source.

moriyoshi/cyrus-sasl-xoauth2 is mirrored into the cache like fetchmail (default URL, or
`--plugin-upstream` / $XOAUTH2_PLUGIN_UPSTREAM), built in the relay image of each distro
against that distro's libsasl2, and checked to register a client mechanism XOAUTH2. A build
is keyed by (plugin commit, relay image recipe, distro, BUILD_SCRIPT_VERSION) and kept under
<cache>/plugins/; nothing of the plugin's code is part of this repository.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
from filelock import FileLock

from harness import paths
from harness.build.container import Container
from harness.build.distros import Distro
from harness.errors import BuildError, ConfigError
from harness.relay import image
from harness.source.gitmirror import GitMirror, git_reason

DEFAULT_UPSTREAM = "https://github.com/moriyoshi/cyrus-sasl-xoauth2.git"
UPSTREAM_ENV = "XOAUTH2_PLUGIN_UPSTREAM"
PLUGIN_FILE = "libxoauth2.so"  # the name postfix's libsasl2 finds it by in its plugin dir
BUILD_SCRIPT_VERSION = 1
SRC = "/build/plugin"
STAGE = "/build/staged"  # the plugin alone in a directory, as a plugin directory holds it
STEPS: tuple[tuple[str, str], ...] = (
    ("bootstrap", "./autogen.sh"),
    ("configure", "./configure --with-cyrus-sasl=/usr"),
    ("make", "make"),
    ("registers", f"mkdir -p {STAGE} && cp .libs/{PLUGIN_FILE} {STAGE}/ && "
                  f"saslpluginviewer -c -p {STAGE}"),
)


def configured_upstream(explicit: str | None = None) -> str:
    """Explicit argument, else $XOAUTH2_PLUGIN_UPSTREAM, else GitHub."""
    return explicit or os.environ.get(UPSTREAM_ENV) or DEFAULT_UPSTREAM


def mirror_path(cache: Path) -> Path:
    return cache / "source" / "cyrus-sasl-xoauth2.git"


class PluginSource:
    """The plugin's git history (a bare mirror in the cache) and trees of its commits."""

    def __init__(self, upstream: str | None = None, cache: Path | None = None) -> None:
        self.cache = cache or paths.cache_dir()
        self.upstream = configured_upstream(upstream)
        self.mirror = GitMirror(
            self.upstream, mirror_path(self.cache),
            what="cyrus-sasl-xoauth2",
            hint=f"Point at a reachable copy: --plugin-upstream URL_OR_PATH or {UPSTREAM_ENV}.",
        )

    def commit(self, ref: str | None = None) -> str:
        """The commit `ref` names (default: the upstream's default branch)."""
        repo = self.mirror.repo()
        try:
            return str(repo.git.rev_parse(f"{ref or 'HEAD'}^{{commit}}"))
        except git.GitCommandError as exc:
            raise ConfigError(
                f"cyrus-sasl-xoauth2 has no {ref!r} ({git_reason(exc)}); name a branch, tag or "
                "commit of " + self.upstream
            ) from exc

    def export_tree(self, commit: str, dest: Path) -> None:
        """The files of `commit` (no .git) into `dest`."""
        buf = io.BytesIO()
        self.mirror.repo().archive(buf, commit, format="tar")
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            tar.extractall(dest, filter="data")


@dataclass(frozen=True)
class PluginBuild:
    distro: Distro
    commit: str
    upstream: str
    key: str
    dist_dir: Path
    cached: bool

    @property
    def plugin(self) -> Path:
        return self.dist_dir / PLUGIN_FILE

    @property
    def binary(self) -> Path:
        """What the matrix runner calls a build's product."""
        return self.plugin

    @property
    def log(self) -> Path:
        return self.dist_dir / "build.log"

    @property
    def identifier(self) -> str:
        return f"cyrus-sasl-xoauth2-{self.commit[:12]}-{self.distro}"


def build_key(commit: str, distro: Distro) -> str:
    material = {"commit": commit, "image": image.recipe_hash(distro), "distro": distro,
                "script": BUILD_SCRIPT_VERSION}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def build_plugin(
    distro: Distro,
    *,
    source: PluginSource | None = None,
    ref: str | None = None,
    client: Any = None,
    cache: Path | None = None,
    stream: Callable[[str], None] | None = None,
) -> PluginBuild:
    """The plugin built for `distro` (or served from the cache); BuildError on failure."""
    cache = cache or paths.cache_dir()
    source = source or PluginSource(cache=cache)
    commit = source.commit(ref)
    key = build_key(commit, distro)
    builds = cache / "plugins"
    builds.mkdir(parents=True, exist_ok=True)
    out = builds / f"{distro}-{commit[:12]}-{key[:12]}"
    with FileLock(str(out) + ".lock"):
        if (out / "manifest.json").is_file():
            return PluginBuild(distro, commit, source.upstream, key, out, cached=True)
        work = Path(tempfile.mkdtemp(prefix=f".{distro}-", dir=builds))
        try:
            source.export_tree(commit, work / "src")
            if client is None:
                from harness.build.engine import ensure_engine

                client = ensure_engine()
            tag, _ = image.ensure_relay_image(client, distro)
            (work / "out").mkdir()
            manifest = _container_build(client, tag, work, stream)
            manifest.update(commit=commit, upstream=source.upstream, distro=distro, key=key,
                            image={"tag": tag, "recipe": image.recipe_hash(distro)},
                            build_script_version=BUILD_SCRIPT_VERSION)
            (work / "out" / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if out.exists():
                shutil.rmtree(out)
            (work / "out").replace(out)
        except BuildError as exc:
            failed = builds / "failed" / out.name
            failed.mkdir(parents=True, exist_ok=True)
            if (work / "out" / "build.log").is_file():
                shutil.copyfile(work / "out" / "build.log", failed / "build.log")
            exc.args = (f"{exc}\nlog: {failed / 'build.log'}",)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return PluginBuild(distro, commit, source.upstream, key, out, cached=False)


def _container_build(
    client: Any, tag: str, work: Path, stream: Callable[[str], None] | None
) -> dict[str, Any]:
    log_path = work / "out" / "build.log"
    with log_path.open("w", encoding="utf-8") as logfile, Container(
        client, tag, network_mode="none"
    ) as box:

        def emit(text: str) -> None:
            logfile.write(text)
            logfile.flush()
            if stream is not None:
                stream(text)

        sasl = box.check(["dpkg-query", "-W", "-f", "${Version}", "libsasl2-2"]).strip()
        emit(f"image {tag}, libsasl2 {sasl}\n")
        box.put(work / "src", SRC)
        parts: list[str] = []  # the output of the current step

        def collect(text: str) -> None:
            parts.append(text)
            emit(text)

        for title, cmd in STEPS:
            emit(f"\n=== {title}: {cmd}\n")
            parts.clear()
            code = box.run(cmd, workdir=SRC, stream=collect)
            if code != 0:
                raise BuildError(f"cyrus-sasl-xoauth2: {title} failed (exit {code}) in {tag}:\n"
                                 + "".join(parts)[-1500:])
        viewer = "".join(parts)
        if "SASL mechanism: XOAUTH2" not in viewer:
            raise BuildError("the built cyrus-sasl-xoauth2 plugin does not register a client "
                             "mechanism XOAUTH2 (saslpluginviewer -c):\n" + viewer[-1500:])
        box.get(f"{STAGE}/{PLUGIN_FILE}", work / "out" / PLUGIN_FILE)
    return {"libsasl2": sasl}


def export_plugin(build: PluginBuild, dist: Path) -> Path:
    """Copy a plugin build (plugin, log, manifest) to dist/<identifier>/ (replacing it)."""
    target = dist / build.identifier
    tmp = dist / f".{build.identifier}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(build.dist_dir, tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.replace(target)
    return target
