"""Debian packages from a staged file tree, made with the distro's own tools in a container.

The caller stages the files a package ships (a `make install DESTDIR` tree, docs) on the host
and describes the package with a `DebSpec`; `build_deb` then, inside a running container of
the build image (which has binutils and dpkg-dev): strips the ELF files, computes `Depends`
with dpkg-shlibdeps (raised where the caller knows a stricter minimum), writes md5sums and
the control file and runs dpkg-deb. Nothing here knows about fetchmail, so a second artifact
is packaged the same way, e.g. the XOAUTH2 SASL plugin:

    tree = work / "tree"
    stage_tree(destdir, tree, [f"usr/lib/{multiarch(box)}/sasl2/libxoauth2.so*"])
    add_doc(tree, "libsasl2-modules-xoauth2-moriyoshi", "copyright", licence_text)
    spec = DebSpec(package="libsasl2-modules-xoauth2-moriyoshi", version="0.2+g1a2b3c-1~deb12",
                   summary=..., description=..., maintainer=..., section="libs")
    build_deb(box, spec, tree, out_dir)  # Depends from the .so (libc6, libsasl2-2, ...)
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import shutil
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.build.container import CommandFailed, Container
from harness.errors import BuildError, ConfigError

WORK = "/pkg"  # in the container: WORK/debian/control and WORK/debian/<package>/ (the tree)
_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_DEB_VERSION = re.compile(r"^(\d+:)?[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$")
_ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class DebSpec:
    """What a binary package is called and declares; Depends is computed from its ELF files."""

    package: str
    version: str
    summary: str
    description: str  # the extended description, plain paragraphs
    maintainer: str
    homepage: str = ""
    section: str = "misc"
    priority: str = "optional"
    provides: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    # package -> minimum version, where the files need more than their symbols say
    # (e.g. a binary that refuses a run-time library older than its headers)
    at_least: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _PACKAGE_NAME.match(self.package):
            raise ConfigError(f"not a Debian package name: {self.package!r}")
        if not _DEB_VERSION.match(self.version):
            raise ConfigError(f"not a Debian version: {self.version!r}")

    def deb_name(self, architecture: str) -> str:
        """The conventional file name: package_version_arch.deb (epoch left out)."""
        version = self.version.split(":", 1)[-1]
        return f"{self.package}_{version}_{architecture}.deb"


@dataclass(frozen=True)
class DebResult:
    deb: Path
    control: str  # the control file as packaged
    depends: str


def stage_tree(source: Path, dest: Path, keep: Sequence[str]) -> list[str]:
    """Copy the files of `source` (a DESTDIR tree) matching the globs `keep` into `dest`.

    Symbolic links stay links (a library's libfoo.so -> libfoo.so.0.0.0); man pages are
    gzipped (gzip -9n, as Debian policy asks); modes become 0755 for directories and
    executables, 0644 for the rest. Returns the staged paths, relative.
    """
    staged: list[str] = []
    for pattern in keep:
        for path in sorted(source.glob(pattern)):
            rel = path.relative_to(source)
            target = dest / rel
            if path.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(os.readlink(path))
                staged.append(str(rel))
                continue
            if not path.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            executable = os.access(path, os.X_OK)
            if rel.parts[:3] == ("usr", "share", "man") and path.suffix != ".gz":
                target = target.with_name(target.name + ".gz")
                _gzip(path.read_bytes(), target)
            else:
                shutil.copyfile(path, target)
            target.chmod(0o755 if executable else 0o644)
            staged.append(str(target.relative_to(dest)))
    for directory in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        directory.chmod(0o755)
    return staged


def add_doc(dest: Path, package: str, name: str, text: str, compress: bool = False) -> Path:
    """Write usr/share/doc/<package>/<name> (gzipped with .gz appended when `compress`)."""
    doc = dest / "usr" / "share" / "doc" / package
    doc.mkdir(parents=True, exist_ok=True)
    for directory in (dest / "usr", dest / "usr" / "share", doc.parent, doc):
        directory.chmod(0o755)
    if compress:
        path = doc / f"{name}.gz"
        _gzip(text.encode(), path)
    else:
        path = doc / name
        path.write_text(text)
    path.chmod(0o644)
    return path


def _gzip(data: bytes, target: Path) -> None:
    """gzip -9n: no name, no time stamp in the header (reproducible)."""
    with target.open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as out:
        out.write(data)


def elf_files(tree: Path) -> list[str]:
    """Paths (relative) of the ELF files in a staged tree: what is stripped and analysed."""
    found = []
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == _ELF_MAGIC:
                    found.append(str(path.relative_to(tree)))
    return found


def control_text(spec: DebSpec, architecture: str, depends: str, installed_kib: int) -> str:
    """The DEBIAN/control file."""
    fields = [
        ("Package", spec.package),
        ("Version", spec.version),
        ("Architecture", architecture),
        ("Maintainer", spec.maintainer),
        ("Installed-Size", str(installed_kib)),
        ("Depends", depends),
        ("Provides", ", ".join(spec.provides)),
        ("Conflicts", ", ".join(spec.conflicts)),
        ("Replaces", ", ".join(spec.replaces)),
        ("Section", spec.section),
        ("Priority", spec.priority),
        ("Homepage", spec.homepage),
    ]
    lines = [f"{name}: {value}" for name, value in fields if value]
    lines.append(f"Description: {spec.summary}")
    for number, paragraph in enumerate(spec.description.strip().split("\n\n")):
        if number:
            lines.append(" .")
        lines.extend(f" {line}" for line in textwrap.wrap(" ".join(paragraph.split()), 78))
    return "\n".join(lines) + "\n"


def parse_depends(text: str) -> list[tuple[str, str]]:
    """'libc6 (>= 2.34), libssl3 (>= 3.0.0)' -> [(libc6, 'libc6 (>= 2.34)'), ...]."""
    items = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            items.append((re.split(r"[\s(:]", item, maxsplit=1)[0], item))
    return items


def _minimum_of(item: str) -> str | None:
    match = re.search(r"\(>=\s*([^)\s]+)\)", item)
    return match.group(1) if match else None


def merge_at_least(
    depends: str, at_least: Mapping[str, str], newer: Callable[[str, str], bool]
) -> str:
    """Raise the `>=` of each package named in `at_least` (adding it when absent).

    `newer(a, b)` says whether Debian version a sorts after b (dpkg --compare-versions).
    """
    items = parse_depends(depends)
    names = {name for name, _ in items}
    merged = []
    for name, item in items:
        wanted = at_least.get(name)
        if wanted is not None and "|" not in item:
            current = _minimum_of(item)
            if current is None or newer(wanted, current):
                item = f"{name} (>= {wanted})"
        merged.append(item)
    merged.extend(f"{name} (>= {version})" for name, version in at_least.items()
                  if name not in names)
    return ", ".join(merged)


def architecture(box: Container) -> str:
    return box.check(["dpkg", "--print-architecture"]).strip()


def multiarch(box: Container) -> str:
    """The multiarch triplet (x86_64-linux-gnu): where a library package puts its files."""
    return box.check(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).strip()


def shlibs_depends(box: Container, package: str, files: Sequence[str]) -> str:
    """Depends for ELF `files` (paths in `box`, under WORK/debian/<package>/ for a package),
    as dpkg-shlibdeps computes them from the libraries' symbols files in the image."""
    box.check(["sh", "-c", f"mkdir -p {WORK}/debian && printf 'Source: {package}\\n\\n"
               f"Package: {package}\\nArchitecture: any\\n' > {WORK}/debian/control"])
    try:
        shlibs = box.check(["dpkg-shlibdeps", "-O", *(f"-e{f}" for f in files)], workdir=WORK)
    except CommandFailed as exc:
        raise BuildError(f"dpkg-shlibdeps for {package}: {exc}\n{exc.output[-2000:]}") from exc
    found = re.search(r"^shlibs:Depends=(.*)$", shlibs, re.MULTILINE)
    return found.group(1).strip() if found else ""


def minimum_of(depends: str, package: str) -> str | None:
    """The `>=` version Depends asks of `package` ('libssl3 (>= 3.0.0)' -> '3.0.0')."""
    return next((_minimum_of(item) for name, item in parse_depends(depends) if name == package),
                None)


def _strip_command(path: str) -> list[str]:
    """dh_strip's choice: shared objects lose unneeded symbols too."""
    cmd = ["strip", "--remove-section=.comment", "--remove-section=.note"]
    if re.search(r"\.so(\.\d+)*$", path):
        cmd.append("--strip-unneeded")
    return [*cmd, path]


def build_deb(box: Container, spec: DebSpec, tree: Path, out_dir: Path) -> DebResult:
    """Package the staged `tree` in the running build container `box`; the .deb in out_dir.

    The container needs binutils and dpkg-dev (the build images have both). The staged tree
    is left unchanged on the host; the stripped tree is at WORK/debian/<package> in `box`
    afterwards (e.g. for a tarball of the same files).
    """
    root = f"{WORK}/debian/{spec.package}"
    elves = elf_files(tree)
    if not elves:
        raise BuildError(f"{spec.package}: no ELF file in the staged tree {tree}")
    box.check(["rm", "-rf", WORK])
    box.put(tree, root)
    try:
        for rel in elves:
            box.check(_strip_command(f"{root}/{rel}"))
    except CommandFailed as exc:
        raise BuildError(f"packaging {spec.package}: {exc}\n{exc.output[-2000:]}") from exc
    computed = shlibs_depends(box, spec.package, [f"{root}/{rel}" for rel in elves])

    def newer(a: str, b: str) -> bool:
        return box.run(["dpkg", "--compare-versions", a, "gt", b]) == 0

    depends = merge_at_least(computed, spec.at_least, newer)
    arch = architecture(box)
    kib = int(box.check(["du", "-s", "-k", "--apparent-size", root]).split()[0])
    control = control_text(spec, arch, depends, kib)
    deb_name = spec.deb_name(arch)
    box.check(["mkdir", "-p", f"{root}/DEBIAN", f"{WORK}/out"])
    _put_text(box, control, f"{root}/DEBIAN/control", out_dir)
    script = (
        f"cd {shlex.quote(root)} && find . -type f ! -path './DEBIAN/*' -printf '%P\\0' "
        "| sort -z | xargs -0 md5sum > DEBIAN/md5sums && chmod 0644 DEBIAN/control "
        f"DEBIAN/md5sums && dpkg-deb --root-owner-group --build . {WORK}/out/{deb_name}"
    )
    try:
        box.check(["sh", "-c", script])
    except CommandFailed as exc:
        raise BuildError(f"dpkg-deb {spec.package}: {exc}\n{exc.output[-2000:]}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = box.get(f"{WORK}/out/{deb_name}", out_dir / deb_name)
    return DebResult(deb, control, depends)


def tar_tree(box: Container, package: str, dest: Path, name: str) -> Path:
    """The stripped tree of the last build_deb in `box` (without DEBIAN/) as dest/name.tar.gz.

    Entries are ./usr/..., owned by root, sorted: `tar -C / -xzf` installs them.
    """
    root = f"{WORK}/debian/{package}"
    archive = f"{WORK}/out/{name}"
    box.check(["tar", "-C", root, "--exclude=./DEBIAN", "--owner=0", "--group=0",
               "--numeric-owner", "--sort=name", "-czf", archive, "."])
    dest.mkdir(parents=True, exist_ok=True)
    return box.get(archive, dest / name)


def _put_text(box: Container, text: str, dest: str, scratch: Path) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    local = scratch / f".{PurePosixPath(dest).name}.tmp"
    local.write_text(text)
    try:
        box.put(local, dest)
    finally:
        local.unlink()
