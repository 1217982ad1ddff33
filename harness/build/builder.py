"""Build a (patched) fetchmail in a container and export the binary with its log and manifest.

`plan_build` resolves a BuildSpec's inputs once (source commit, what is applied: the series,
or the variant derived for a 3way release, and the build fixes; image recipe) into a BuildPlan
whose key hashes them (with sanitize and BUILD_SCRIPT_VERSION); `build` runs a plan.
A finished build is kept under <cache>/builds/<identifier>-<key12>/ and served from there
without starting a container.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from filelock import FileLock

from harness import paths
from harness.atomic import atomic_copytree
from harness.build import images, libs, reuse, slots
from harness.build.container import Container
from harness.build.distros import DEFAULT_DISTRO, Distro, check_distro
from harness.errors import BuildError, ConfigError, HarnessError, PatchError
from harness.series.apply import ApplyPlan, apply_plan, plan_apply
from harness.series.names import NATIVE_SERIES, UNPATCHED
from harness.series.table import Series, entry_for
from harness.source.mirror import FetchmailSource, Source
from harness.source.versions import Version

log = logging.getLogger(__name__)

# Bump when the steps below change in a way that changes the binary.
BUILD_SCRIPT_VERSION = 6
SRC = reuse.SRC
BOOTSTRAP = "if [ -x ./autogen.sh ]; then ./autogen.sh; else autoreconf -fi; fi"
DESTDIR = "/build/destdir"  # `make install DESTDIR=` (prefix /usr, as a Debian package has it)
# fetchmail's licence and release notes, for the packages made from the DESTDIR tree
DOCS = ("COPYING", "NEWS")
SANITIZE_FLAGS = "-fsanitize=address,undefined -fno-omit-frame-pointer -g"


SANITIZER = "asan"  # the one sanitizer build: AddressSanitizer + UndefinedBehaviorSanitizer


@dataclass(frozen=True)
class BuildSpec:
    """One build: fetchmail version x distro x series (None: unpatched) x sanitizers."""

    version: Version
    distro: Distro = DEFAULT_DISTRO
    series: str | None = None
    sanitize: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.version, Version):  # a str here fails much later, obscurely
            raise TypeError(f"BuildSpec wants a Version, not {self.version!r}")

    @property
    def identifier(self) -> str:
        """VERSION-SERIES-DISTRO[+asan], the build group of the matrix cells it serves:
        6.4.33-oauth64-bookworm, next-native-trixie+asan, 6.4.33-upstream-bullseye."""
        series = self.series or (NATIVE_SERIES if self.version.branch else UNPATCHED)
        return f"{self.version}-{series}-{self.distro}" + (f"+{SANITIZER}" if self.sanitize else "")

    def describe(self) -> dict[str, object]:
        return {"version": str(self.version), "distro": self.distro, "series": self.series,
                "sanitize": self.sanitize}


@dataclass(frozen=True)
class BuildPlan:
    """A spec with its inputs resolved once (what `build` reuses): key = hash of them all."""

    spec: BuildSpec
    source: Source
    commit: str
    apply: ApplyPlan  # the series (or its 3way variant) and the build fixes, as applied
    recipe: str  # content hash of the build image's recipe
    key: str

    @property
    def series(self) -> Series | None:
        return self.apply.series


@dataclass(frozen=True)
class BuildResult:
    spec: BuildSpec
    binary: Path
    log: Path
    version_output: str
    cached: bool
    key: str
    dist_dir: Path


def default_series(version: Version, patches_dir: Path | None = None) -> str | None:
    """The series patches/series.toml maps `version` to (None for next or uncovered)."""
    entry = entry_for(version, patches_dir)
    return entry.series if entry else None


def configure_options(tree: Path) -> list[str]:
    """Extra ./configure options a release needs with today's toolchains.

    - 6.3.x ships po/ja.po with a plural-forms header today's msgfmt rejects: no NLS.
    """
    configure_ac = tree / "configure.ac"
    text = configure_ac.read_text(errors="replace") if configure_ac.is_file() else ""
    match = re.search(r"AC_INIT\(\[?fetchmail\]?,\s*\[?([0-9.]+)", text)
    if match and match.group(1).startswith("6.3."):
        return ["--disable-nls"]
    return []


def _key(commit: str, apply: ApplyPlan, recipe: str, spec: BuildSpec) -> str:
    material = {
        "commit": commit,
        **apply.material(),
        "image": recipe,
        "distro": spec.distro,
        "sanitize": spec.sanitize,
        "script": BUILD_SCRIPT_VERSION,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _result_from(spec: BuildSpec, key: str, out: Path, cached: bool) -> BuildResult:
    return BuildResult(
        spec=spec,
        binary=out / "fetchmail",
        log=out / "build.log",
        version_output=(out / "version.txt").read_text(),
        cached=cached,
        key=key,
        dist_dir=out,
    )


_DIAGNOSES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"undefined reference to `(SSLv[23]_\w+|TLSv1_\w+)'"),
        "calls {0}, which the distro's OpenSSL {ssl} no longer provides: this fetchmail "
        "predates the OpenSSL 1.1 API",
    ),
    (
        re.compile(r"(?:dereferencing pointer to incomplete type|invalid use of incomplete "
                   r"typedef) ['\u2018]?(SSL\w*|X509\w*|EVP\w*|BIO\w*)"),
        "reaches into OpenSSL struct {0}, which is opaque since OpenSSL 1.1 (the distro has "
        "{ssl}): this fetchmail predates the OpenSSL 1.1 API",
    ),
    (
        re.compile(
            r"implicit declaration of function ['\u2018]?((?:SSL|TLS|X509|EVP|CRYPTO|ERR)\w*)"
        ),
        "calls {0}, which the distro's OpenSSL {ssl} does not declare: this fetchmail "
        "predates the OpenSSL 1.1 API",
    ),
    (
        re.compile(r"Autoconf version ([\d.]+) or higher is required"),
        "needs Autoconf {0} or newer, which this distro does not have: build it on a newer "
        "distro",
    ),
]


def diagnose(log_text: str, openssl: str) -> str | None:
    """A one-line cause for well-known failures of a release on a distro it does not fit."""
    for pattern, message in _DIAGNOSES:
        m = pattern.search(log_text)
        if m:
            return message.format(m[1], ssl=openssl or "(unknown version)")
    return None


class _Log:
    """build.log on disk, optionally echoed to a callback."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None) -> None:
        self.file = path.open("w", encoding="utf-8")
        self.echo = echo

    def __call__(self, text: str) -> None:
        self.file.write(text)
        self.file.flush()
        if self.echo:
            self.echo(text)

    def step(self, title: str) -> None:
        self(f"\n=== {title}\n")


def _tail(path: Path, n: int = 25) -> str:
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:])


class _Steps:
    """The build's shell steps in one container, each logged with its time."""

    def __init__(self, box: Container, spec: BuildSpec, logger: _Log, out: Path,
                 openssl: str) -> None:
        self.box, self.spec, self.logger, self.out, self.openssl = box, spec, logger, out, openssl
        self.times: dict[str, float] = {}

    def run(self, title: str, cmd: list[str] | str, env: dict[str, str],
            *, fatal: bool = True) -> int:
        slots.checkpoint()
        self.logger.step(f"{title}: {cmd if isinstance(cmd, str) else ' '.join(cmd)}")
        started = time.monotonic()
        code = self.box.run(cmd, workdir=SRC, env=env, stream=self.logger)
        took = time.monotonic() - started
        self.times[title] = round(self.times.get(title, 0.0) + took, 2)
        self.logger(f"=== {title} exited {code} after {took:.1f}s\n")
        if code != 0 and fatal:
            self.fail(title, code)
        return code

    def fail(self, title: str, code: int) -> None:
        self.logger.file.flush()
        log_path = self.out / "build.log"
        cause = diagnose(log_path.read_text(errors="replace"), self.openssl)
        what = f"fetchmail {self.spec.version} on {self.spec.distro}"
        head = f"{what}: {cause}" if cause else f"{what}: {title} failed (exit {code})"
        raise BuildError(f"{head}\nlog: {log_path}\n--- last lines:\n{_tail(log_path)}")


def _container_build(
    client: docker.DockerClient,
    image: images.BuildImage,
    tree: Path,
    spec: BuildSpec,
    out: Path,
    logger: _Log,
    cache: Path,
) -> dict[str, Any]:
    """Bootstrap, configure and make in a fresh container, reusing what neighbouring builds
    left (harness.build.reuse); fill `out`. Returns manifest extras."""
    store = reuse.Store(cache)
    cflags = "-g -O2" + (f" {SANITIZE_FLAGS}" if spec.sanitize else "")
    ldflags = SANITIZE_FLAGS if spec.sanitize else ""
    env = {**reuse.CCACHE_ENV, "ASAN_OPTIONS": "detect_leaks=0"}
    options = configure_options(tree)
    arguments = ["--prefix=/usr", "--with-ssl", *options, "CC=ccache gcc", f"CFLAGS={cflags}",
                 f"LDFLAGS={ldflags}"]
    bootstrap_key = reuse.bootstrap_key(tree, image.content_hash, BOOTSTRAP)
    kept_bootstrap = store.autoreconf(bootstrap_key)
    config_cache = store.configure(
        reuse.configure_key(image.content_hash, reuse.release_family(str(spec.version)), arguments))
    autopoint_key = reuse.autopoint_key(tree, image.content_hash, BOOTSTRAP)
    kept_autopoint = store.autopoint(autopoint_key) if autopoint_key else None
    reused = {"autoreconf": kept_bootstrap.is_file(), "configure_cache": config_cache.is_file()}
    if autopoint_key and not reused["autoreconf"]:
        reused["autopoint"] = kept_autopoint is not None and kept_autopoint.is_file()
    docs = " ".join(DOCS)
    install = (f"make install DESTDIR={DESTDIR} && for f in {docs}; do [ ! -f $f ] || "
               f"install -D -m 644 $f {DESTDIR}/usr/share/doc/fetchmail/$f; done")
    with Container(
        client, image.tag, network_mode="none",
        volumes={str(store.ccache): {"bind": "/ccache", "mode": "rw"}},
    ) as box:
        openssl = box.check(["pkg-config", "--modversion", "openssl"]).strip()
        logger(f"image {image.tag}, OpenSSL {openssl}\nreused: {json.dumps(reused)}\n")
        box.put(tree, SRC)
        steps = _Steps(box, spec, logger, out, openssl)
        if reused["autoreconf"]:
            box.put(kept_bootstrap, reuse.ARCHIVE)
        if reused.get("autopoint") and kept_autopoint is not None:
            box.put(kept_autopoint, reuse.AUTOPOINT_ARCHIVE)
        steps.run("bootstrap", reuse.bootstrap_script(BOOTSTRAP, reused["autoreconf"],
                                                      autopoint="autopoint" in reused), env)
        if not reused["autoreconf"]:
            box.get(reuse.ARCHIVE, out / "autoreconf.tar")
        if reused.get("autopoint") is False and kept_autopoint is not None:
            # autopoint ran: what it wrote serves the builds starting now, whatever becomes of
            # this one (it depends on the image and configure.ac's gettext lines alone)
            with contextlib.suppress(HarnessError):  # (none: autoreconf did not call it)
                box.get(reuse.AUTOPOINT_ARCHIVE + ".new", out / "autopoint.tar")
                store.keep(out / "autopoint.tar", kept_autopoint)
        with store.first_configure(config_cache) as first:
            if first:
                logger("=== first configure of this family: the others wait for its "
                       "config.cache\n")
            reused["configure_cache"] = config_cache.is_file()  # the first may have made it
            if reused["configure_cache"]:
                box.put(config_cache, reuse.CONFIG_CACHE)
            configure = ["./configure", f"--cache-file={reuse.CONFIG_CACHE}", *arguments]
            checks = {**env, **reuse.CONFIGURE_ENV}
            if steps.run("configure", configure, checks,
                         fatal=not reused["configure_cache"]) != 0:
                logger("=== configure failed starting from the shared config.cache: "
                       "rerunning it without\n")
                box.check(["rm", "-f", reuse.CONFIG_CACHE])
                reused["configure_cache"] = False
                steps.run("configure", configure, checks)
            box.get(reuse.CONFIG_CACHE, out / "config.cache")
            store.keep(out / "config.cache", config_cache)  # configure succeeded: share it
        with store.first_compile(f"{image.id} {cflags}") as first:
            if first:
                logger("=== first compile of this image and flags: the others wait for it\n")
            steps.run("make", ["make", "-j2"], {**env, "CCACHE_STATSLOG": reuse.STATS_LOG})
        steps.run("install", install, env)
        ccache = _ccache_counts(box)
        logger(f"=== ccache: {json.dumps(ccache)}\n")
        logger.step("fetchmail --version")
        parts: list[str] = []
        box.run([f"{SRC}/fetchmail", "--version"], workdir="/tmp", env=env, stream=parts.append)
        version_output = "".join(parts)
        logger(version_output)
        if "fetchmail" not in version_output.lower():
            raise BuildError(f"the built fetchmail does not run: {version_output[-500:]}")
        (out / "version.txt").write_text(version_output)
        box.get(f"{SRC}/fetchmail", out / "fetchmail")
        box.get(DESTDIR, out / "destdir")
        runtime = libs.inspect(box, f"{SRC}/fetchmail")
    # kept only once the build succeeded: a failing tree leaves nothing for the next one
    # (config.cache is shared as soon as configure succeeded: the builds beside wait for it;
    # autopoint's outputs as soon as the bootstrap did)
    if not reused["autoreconf"]:
        store.keep(out / "autoreconf.tar", kept_bootstrap)
    return {"openssl": openssl, **runtime, "cflags": cflags, "ldflags": ldflags,
            "configure_options": options, "reused": reused,
            "ccache": ccache, "step_seconds": steps.times}


def _ccache_counts(box: Container) -> dict[str, int] | None:
    """This build's ccache hits and misses (None where ccache keeps no stats log)."""
    parts: list[str] = []
    code = box.run(["cat", reuse.STATS_LOG], stream=parts.append)
    return reuse.ccache_counts("".join(parts)) if code == 0 else None


def plan_build(spec: BuildSpec, *, source: Source, patches_dir: Path | None = None) -> BuildPlan:
    """Resolve what `spec` is built from, without building anything (no engine needed)."""
    check_distro(spec.distro)
    version = source.resolve(str(spec.version))
    commit = source.commit(version)
    apply = plan_apply(version, spec.series, source, patches_dir)
    recipe = images.dockerfile_hash(spec.distro)
    return BuildPlan(spec, source, commit, apply, recipe, _key(commit, apply, recipe, spec))


def build(
    target: BuildSpec | BuildPlan,
    *,
    source: Source | None = None,
    patches_dir: Path | None = None,
    client: docker.DockerClient | None = None,
    cache: Path | None = None,
    stream: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build a plan (a spec is planned first), or serve it from the cache; BuildError /
    PatchError on failure. `source` and `patches_dir` only serve to plan a spec."""
    cache = cache or paths.cache_dir()
    if isinstance(target, BuildSpec):
        source = source or FetchmailSource(cache=cache)
        target = plan_build(target, source=source, patches_dir=patches_dir)
    plan, spec, key = target, target.spec, target.key
    builds = cache / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    out = builds / f"{spec.identifier}-{key[:12]}"
    locks = cache / "locks"
    locks.mkdir(exist_ok=True)
    with FileLock(str(locks / f"build-{out.name}.lock")):
        if (out / "manifest.json").is_file():
            return _result_from(spec, key, out, cached=True)
        work = Path(tempfile.mkdtemp(prefix=f".{spec.identifier}-", dir=builds))
        try:
            tmp_out = work / "out"
            tmp_out.mkdir()
            tree = work / "src"
            shutil.copytree(
                plan.source.worktree(spec.version), tree, symlinks=True,
                ignore=shutil.ignore_patterns(".git"),
            )
            reports = apply_plan(plan.apply, spec.version, tree, tmp_out)  # before any container
            from harness.build.engine import ensure_engine

            client = client or ensure_engine()
            image, _ = images.ensure_build_image(client, spec.distro)
            logger = _Log(tmp_out / "build.log", stream)
            try:
                logger(f"build {spec.identifier} key {key}\n"
                       f"source {spec.version} commit {plan.commit}\n")
                logger(plan.apply.describe(spec.version) + "\n")
                for report in reports:
                    logger(report.render() + "\n")
                extras = _container_build(client, image, tree, spec, tmp_out, logger, cache)
            finally:
                logger.file.close()
            series = plan.series
            manifest = {
                "identifier": spec.identifier,
                "spec": spec.describe(),
                "version": str(spec.version),
                "commit": plan.commit,
                "series": series.name if series else None,
                "series_hash": series.content_hash() if series else None,
                "apply": plan.apply.method,
                "patches": series.patch_hashes() if series else {},
                "build_fixes": [f.patch.name for f in plan.apply.fixes],
                "distro": spec.distro,
                "image": {"tag": image.tag, "id": image.id, "recipe": plan.recipe},
                "sanitize": spec.sanitize,
                "build_script_version": BUILD_SCRIPT_VERSION,
                "key": key,
                **extras,
            }
            (tmp_out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if out.exists():  # a damaged earlier result (no manifest): replace it
                shutil.rmtree(out)
            os.replace(tmp_out, out)
        except (BuildError, PatchError) as exc:
            _keep_failure(exc, work / "out", builds / "failed" / out.name)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return _result_from(spec, key, out, cached=False)


def _keep_failure(exc: Exception, tmp_out: Path, failed: Path) -> None:
    """Keep a failed build's log and apply report (in builds/failed/), named in the error."""
    failed.mkdir(parents=True, exist_ok=True)
    kept = []
    for name in ("build.log", "apply-report.txt"):
        if (tmp_out / name).is_file():
            shutil.copyfile(tmp_out / name, failed / name)
            kept.append(name)
    text = str(exc).replace(str(tmp_out), str(failed))
    if kept and str(failed) not in text:
        text += f"\nkept: {', '.join(str(failed / k) for k in kept)}"
    exc.args = (text,)


def export(result: BuildResult, dist: Path) -> Path:
    """Copy a build's files to dist/<identifier>/ (replacing an older copy).

    The DESTDIR tree stays in the cache: `--tarball` and `--deb` are how it leaves.
    """
    target = dist / result.spec.identifier
    atomic_copytree(result.dist_dir, target, leave_out=("destdir",))
    return target


def check_spec(spec: BuildSpec) -> None:
    if spec.series is not None and spec.version.branch:
        raise ConfigError("fetchmail next has native OAuth; build it with no series")
