"""What a cold build reuses from the builds before it, each piece keyed by what it is made from.

- ccache: one directory for every build, bind-mounted at /ccache. The tree always sits at
  /build/src and hash_dir is off, so neighbouring releases, whose sources mostly agree, hit
  each other's objects. The first compile of each compiler family (build image + flags) runs
  alone, so the builds after it find its objects instead of compiling beside it.
- autoreconf: the files the bootstrap step (autogen.sh or autoreconf) writes, kept per image
  recipe, bootstrap command and bootstrap inputs (configure.ac, every Makefile.am, the m4
  files, the tree's file names); unpacked instead of bootstrapping again when a release is
  rebuilt (another series, a sanitizer build). Any change to those inputs makes a new key.
- autopoint: what gettext's autopoint copies into the tree (m4/*.m4, po/Makefile.in.in, ...)
  depends only on the image and what configure.ac asks of gettext, not on the release: kept
  per image recipe, bootstrap command, autogen.sh, configure.ac's gettext, aux-dir and
  macro-dir lines, Makefile.am's ACLOCAL_AMFLAGS and the files already where autopoint
  writes, and unpacked in its place (autoreconf calls it through $AUTOPOINT) by the
  neighbouring releases whose configure.ac differs elsewhere; kept as soon as the bootstrap
  that ran it succeeded, for the builds starting meanwhile.
- configure: one config.cache per suite, compiler and flags and release family (6.3, 6.4, …,
  next: the same checks mean the same there). configure starts from a copy and the copy is
  written back after it succeeded; a configure that fails with it is rerun without it. The
  first configure of a family runs alone (as the first compile does), so the builds beside it
  start from its cache instead of running every check at once. configure's own test compiles
  bypass ccache (CCACHE_DISABLE): they carry the release's version and would never hit.

A build that waits for a family's first configure or compile gives its slot of the run's
cores to a build that can go on (harness.build.slots).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from harness.build import slots

SRC = "/build/src"
CCACHE_ENV = {"CCACHE_DIR": "/ccache", "CCACHE_NOHASHDIR": "true", "CCACHE_BASEDIR": SRC}
# configure's test programs include confdefs.h, which holds the release's version: they never
# hit across releases, so ccache would only hash and store them; configure compiles past it
CONFIGURE_ENV = {"CCACHE_DISABLE": "1"}
STATS_LOG = "/build/ccache-stats.log"  # ccache >= 4.5 writes it (bullseye's 4.2 does not)
MARK = "/build/.bootstrap-start"
ARCHIVE = "/build/autoreconf.tar"
AUTOPOINT = "/build/autopoint"  # what autoreconf runs as autopoint ($AUTOPOINT)
AUTOPOINT_ARCHIVE = "/build/autopoint.tar"  # present: unpack it instead of running autopoint
AUTOPOINT_MARK = "/build/.autopoint-start"
CONFIG_CACHE = "/build/config.cache"

# the files autoreconf reads: their content is part of the key, every other file only its name
_BOOTSTRAP_INPUTS = ("configure.ac", "configure.in", "acinclude.m4", "autogen.sh")


def _digest(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def bootstrap_key(tree: Path, recipe: str, command: str) -> str:
    """The key of the bootstrap's outputs: image recipe, command and every input it reads."""
    contents: dict[str, str] = {}
    names: list[str] = []
    for path in sorted(tree.rglob("*")):
        if not (path.is_file() or path.is_symlink()):
            continue
        rel = path.relative_to(tree).as_posix()
        names.append(rel)
        if path.name in _BOOTSTRAP_INPUTS or path.name == "Makefile.am" or path.suffix == ".m4":
            contents[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _digest({"recipe": recipe, "command": command, "inputs": contents, "names": names})


# what autopoint reads of configure.ac and Makefile.am, and where it writes in the tree
_AUTOPOINT_LINES = re.compile(r"GETTEXT|AC_CONFIG_AUX_DIR|AC_CONFIG_MACRO_DIR|ACLOCAL_AMFLAGS")
_AUTOPOINT_TARGETS = ("m4/", "po/", "intl/", "build-aux/", "ABOUT-NLS", "config.rpath",
                      "mkinstalldirs")


def autopoint_key(tree: Path, recipe: str, command: str) -> str | None:
    """The key of autopoint's outputs for `tree`; None when configure.ac uses no gettext."""
    configure_ac = tree / "configure.ac"
    if not configure_ac.is_file():
        return None
    lines = [ln.strip() for ln in configure_ac.read_text(errors="replace").splitlines()
             if _AUTOPOINT_LINES.search(ln) and not ln.lstrip().startswith("dnl")]
    if not any("AM_GNU_GETTEXT_VERSION" in ln for ln in lines):
        return None
    makefile_am = tree / "Makefile.am"
    if makefile_am.is_file():
        lines += [ln.strip() for ln in makefile_am.read_text(errors="replace").splitlines()
                  if "ACLOCAL_AMFLAGS" in ln]
    present: dict[str, str] = {}
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_file() and rel.startswith(_AUTOPOINT_TARGETS) and not rel.endswith(".po"):
            present[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    autogen = tree / "autogen.sh"
    return _digest({"recipe": recipe, "command": command, "lines": lines, "present": present,
                    "autogen": hashlib.sha256(autogen.read_bytes()).hexdigest()
                    if autogen.is_file() else None})


def release_family(version: str) -> str:
    """6.3, 6.4, 6.5 or next: releases whose configure scripts share their checks."""
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else version


def configure_key(recipe: str, family: str, arguments: list[str]) -> str:
    """Suite and compiler (the image recipe), release family and every configure argument."""
    return _digest({"recipe": recipe, "family": family, "arguments": arguments})


@dataclass(frozen=True)
class Store:
    """The reusable pieces under the harness cache: autoreconf/, configure/, ccache/."""

    root: Path

    @property
    def ccache(self) -> Path:
        path = self.root / "ccache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def autoreconf(self, key: str) -> Path:
        return self._dir("autoreconf") / f"{key[:32]}.tar"

    def autopoint(self, key: str) -> Path:
        return self._dir("autopoint") / f"{key[:32]}.tar"

    def configure(self, key: str) -> Path:
        return self._dir("configure") / f"{key[:32]}.cache"

    def _dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def keep(self, produced: Path, dest: Path) -> None:
        """Move a file a build produced into the store atomically (last writer wins)."""
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        os.close(fd)
        os.replace(produced, tmp)
        os.replace(tmp, dest)

    @contextlib.contextmanager
    def first_compile(self, family: str) -> Iterator[bool]:
        """Hold the compile of `family`'s first build alone; yields True for that first one.

        Once one compile of the family finished (a marker in the ccache dir), the others run
        in parallel again; a failed first compile leaves no marker, so the next one waits.
        """
        name = hashlib.sha256(family.encode()).hexdigest()[:16]
        marker = self.ccache / f".seeded-{name}"
        with self._first(f"ccache-seed-{name}", marker) as first:
            yield first
            if first:
                marker.touch()

    @contextlib.contextmanager
    def first_configure(self, cache_file: Path) -> Iterator[bool]:
        """Hold the configure of the first build of a config.cache's family alone (True for
        it): the builds beside it wait for the cache it writes instead of running every check
        themselves. A failed first configure writes none, so the next one goes first."""
        with self._first(f"configure-seed-{cache_file.stem}", cache_file) as first:
            yield first

    @contextlib.contextmanager
    def _first(self, name: str, seeded: Path) -> Iterator[bool]:
        """While `seeded` is missing one build at a time runs the step (True, under a lock)
        and the others wait for it, their build slots (harness.build.slots) given to builds
        that can go on; once it exists they all go on at once (False)."""
        if not seeded.exists():
            lock = FileLock(str(self._dir("locks") / f"{name}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                with slots.given_up():  # another build is at it: our core serves a third one
                    lock.acquire()
            try:
                if not seeded.exists():
                    yield True
                    return
            finally:
                lock.release()
        yield False


def _pack_newer(mark: str, archive: str) -> str:
    """Shell: pack the files written since `mark` into `archive`."""
    return (f"find . -newer {mark} \\( -type f -o -type l \\) ! -path './autom4te.cache/*' "
            f"-print | sort | tar -cf {archive} -T -")


# autoreconf's autopoint: the kept outputs unpacked (as written now), else autopoint itself,
# with the arguments autoreconf gives it, its outputs packed for the next release
_AUTOPOINT_SCRIPT = f"""#!/bin/sh
set -e
if [ -f {AUTOPOINT_ARCHIVE} ]; then
  echo "autopoint: unpacking the kept outputs ({AUTOPOINT_ARCHIVE})"
  exec tar -xmf {AUTOPOINT_ARCHIVE}
fi
touch {AUTOPOINT_MARK}
autopoint "$@"
{_pack_newer(AUTOPOINT_MARK, AUTOPOINT_ARCHIVE + ".new")}
"""


def bootstrap_script(command: str, archive_present: bool, autopoint: bool = False) -> str:
    """The shell step: unpack the kept outputs (all stamped newer than their inputs, so make
    does not regenerate them), or run the bootstrap and pack the files it wrote. With
    `autopoint`, autoreconf's autopoint goes through AUTOPOINT (see _AUTOPOINT_SCRIPT)."""
    if archive_present:
        return (f"set -e; tar -xf {ARCHIVE}; stamp=@$(date +%s.%N); "
                f"tar -tf {ARCHIVE} | xargs touch -h -d \"$stamp\"")
    wrapper = (f"cat > {AUTOPOINT} <<'EOF'\n{_AUTOPOINT_SCRIPT}EOF\nchmod +x {AUTOPOINT}; "
               f"export AUTOPOINT={AUTOPOINT}; " if autopoint else "")
    return f"set -e; {wrapper}touch {MARK}; {command}; {_pack_newer(MARK, ARCHIVE)}"


def ccache_counts(stats_log: str) -> dict[str, int]:
    """hits and misses from a ccache stats log (one counter name a line, '# file' headers)."""
    lines = [ln.strip() for ln in stats_log.splitlines()]
    hits = sum(ln in ("direct_cache_hit", "preprocessed_cache_hit") for ln in lines)
    misses = sum(ln == "cache_miss" for ln in lines)
    return {"hits": hits, "misses": misses}
