"""Build a (patched) fetchmail in a container and export the binary with its log and manifest.

`plan_build` resolves a BuildSpec's inputs once (source commit, series, image recipe) into a
BuildPlan whose key hashes them (with sanitize and BUILD_SCRIPT_VERSION); `build` runs a plan.
A finished build is kept under <cache>/builds/<identifier>-<key12>/ and served from there
without starting a container.
"""

from __future__ import annotations

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
from harness.build import images, libs
from harness.build.container import Container
from harness.build.distros import DEFAULT_DISTRO, Distro, check_distro
from harness.errors import BuildError, ConfigError, PatchError
from harness.series.apply import ApplyReport, apply_series
from harness.series.names import NATIVE_SERIES, UNPATCHED
from harness.series.table import Series, entry_for, load_series
from harness.source.mirror import FetchmailSource, Source
from harness.source.versions import Version

log = logging.getLogger(__name__)

# Bump when the steps below change in a way that changes the binary.
BUILD_SCRIPT_VERSION = 4
SRC = "/build/src"
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
    series: Series | None
    max_fuzz: int | None  # the table's, when it maps the version to this very series
    recipe: str  # content hash of the build image's recipe
    key: str


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


def compat_flags(tree: Path) -> list[str]:
    """Preprocessor flags old releases need with today's toolchains (recorded in the manifest).

    - 6.3.x calls SSLv3_client_method(), which OpenSSL >= 1.1 on Debian no longer has
      (built with no-ssl3-method): map it to TLS_client_method, so `sslproto ssl3` means TLS.
    - 6.4.0..6.4.x refer to bison's yytoknum table, gone since bison 3.6.
    - Early 6.4.x define OPENSSL_NO_DEPRECATED yet call SSL_use_RSAPrivateKey_file(), which
      OpenSSL 3 then hides: an implicit declaration, a hard error since gcc 14 (trixie). Call
      SSL_use_PrivateKey_file() (any key type, same arguments), as 6.5.0.beta3 does.
    """
    flags = []
    socket_c = tree / "socket.c"
    if socket_c.is_file():
        text = socket_c.read_text(errors="replace")
        if "SSLv3_client_method" in text and "OPENSSL_NO_SSL3" not in text:
            flags.append("-DSSLv3_client_method=TLS_client_method")
        if "SSL_use_RSAPrivateKey_file" in text and "OPENSSL_NO_DEPRECATED" in text:
            flags.append("-DSSL_use_RSAPrivateKey_file=SSL_use_PrivateKey_file")
    grammar = tree / "rcfile_y.y"
    if grammar.is_file() and "yytoknum" in grammar.read_text(errors="replace"):
        flags.append("-Dyytoknum=0")
    return flags


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


def _key(commit: str, series: Series | None, recipe: str, spec: BuildSpec) -> str:
    material = {
        "commit": commit,
        "series": series.content_hash() if series else None,
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


def _container_build(
    client: docker.DockerClient,
    image: str,
    tree: Path,
    spec: BuildSpec,
    flags: list[str],
    out: Path,
    logger: _Log,
    cache: Path,
) -> dict[str, Any]:
    """Run autogen/configure/make in a fresh container; fill `out`. Returns manifest extras."""
    ccache = cache / "ccache"
    ccache.mkdir(exist_ok=True)
    cflags = "-g -O2" + (f" {SANITIZE_FLAGS}" if spec.sanitize else "")
    ldflags = SANITIZE_FLAGS if spec.sanitize else ""
    env = {"CCACHE_DIR": "/ccache", "ASAN_OPTIONS": "detect_leaks=0"}
    options = configure_options(tree)
    configure = [
        "./configure", "--prefix=/usr", "--with-ssl", *options, "CC=ccache gcc",
        f"CFLAGS={cflags}", f"CPPFLAGS={' '.join(flags)}", f"LDFLAGS={ldflags}",
    ]
    docs = " ".join(DOCS)
    steps: list[tuple[str, list[str] | str]] = [
        ("bootstrap", "if [ -x ./autogen.sh ]; then ./autogen.sh; else autoreconf -fi; fi"),
        ("configure", configure),
        ("make", ["make", "-j2"]),
        ("install", f"make install DESTDIR={DESTDIR} && for f in {docs}; do [ ! -f $f ] || "
                    f"install -D -m 644 $f {DESTDIR}/usr/share/doc/fetchmail/$f; done"),
    ]
    with Container(
        client, image, network_mode="none",
        volumes={str(ccache): {"bind": "/ccache", "mode": "rw"}},
    ) as box:
        openssl = box.check(["pkg-config", "--modversion", "openssl"]).strip()
        logger(f"image {image}, OpenSSL {openssl}, compat flags: {' '.join(flags) or 'none'}\n")
        box.put(tree, SRC)
        for title, cmd in steps:
            logger.step(f"{title}: {cmd if isinstance(cmd, str) else ' '.join(cmd)}")
            started = time.monotonic()
            code = box.run(cmd, workdir=SRC, env=env, stream=logger)
            logger(f"=== {title} exited {code} after {time.monotonic() - started:.1f}s\n")
            if code != 0:
                logger.file.flush()
                log_path = out / "build.log"
                cause = diagnose(log_path.read_text(errors="replace"), openssl)
                what = f"fetchmail {spec.version} on {spec.distro}"
                head = f"{what}: {cause}" if cause else f"{what}: {title} failed (exit {code})"
                raise BuildError(f"{head}\nlog: {log_path}\n--- last lines:\n{_tail(log_path)}")
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
    return {"openssl": openssl, **runtime, "cflags": cflags, "ldflags": ldflags,
            "cppflags": flags, "configure_options": options}


def plan_build(spec: BuildSpec, *, source: Source, patches_dir: Path | None = None) -> BuildPlan:
    """Resolve what `spec` is built from, without building anything (no engine needed)."""
    check_distro(spec.distro)
    commit = source.commit(source.resolve(str(spec.version)))
    series = load_series(spec.series, patches_dir) if spec.series else None
    max_fuzz = None
    if series is not None:
        entry = entry_for(spec.version, patches_dir)
        max_fuzz = entry.max_fuzz if entry and entry.series == series.name else None
    recipe = images.dockerfile_hash(spec.distro)
    return BuildPlan(spec, source, commit, series, max_fuzz, recipe,
                     _key(commit, series, recipe, spec))


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
            report = _apply(plan, tree, tmp_out)  # before any container
            flags = compat_flags(tree)
            from harness.build.engine import ensure_engine

            client = client or ensure_engine()
            image, _ = images.ensure_build_image(client, spec.distro)
            logger = _Log(tmp_out / "build.log", stream)
            try:
                logger(f"build {spec.identifier} key {key}\n"
                       f"source {spec.version} commit {plan.commit}\n")
                if report:
                    logger(report.render() + "\n")
                extras = _container_build(client, image.tag, tree, spec, flags, tmp_out, logger,
                                          cache)
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
                "patches": series.patch_hashes() if series else {},
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


def _apply(plan: BuildPlan, tree: Path, out: Path) -> ApplyReport | None:
    if plan.series is None:
        (out / "apply-report.txt").write_text(f"no series: unpatched fetchmail "
                                              f"{plan.spec.version}\n")
        return None
    report = apply_series(plan.series, tree, max_fuzz=plan.max_fuzz)
    (out / "apply-report.txt").write_text(report.render() + "\n")
    if not report.ok:
        raise PatchError(report.render())
    return report


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
