"""The patched fetchmail of a finished build as a Debian package and as a DESTDIR tarball.

The package is called `fetchmail-oauth`, not `fetchmail`, and Provides/Conflicts/Replaces
`fetchmail`: it takes the place of Debian's package (apt removes that one when this one is
installed), and `apt upgrade` never swaps it for Debian's unpatched fetchmail — an upgrade only
moves installed packages to newer versions of the same name, and Debian has no
`fetchmail-oauth`. A same-named package would lose to Debian's newer 6.4.37 at the next
upgrade unless every user pinned or held it (state outside the package, easy to lose), and an
epoch would outrank every future Debian fetchmail forever, also for users who want Debian's
back. Going back is one explicit command: `apt install fetchmail`.

Version: <upstream>+<series>-<revision>~deb<N>.<suite>, e.g. 6.4.33+oauth64-1~deb12.bookworm:
the fetchmail release, the patch series (`native` for fetchmail 7, `upstream` unpatched),
this module's packaging revision, and the Debian release it was built for (deb11 < deb12 <
deb13, so a package for a newer suite sorts after the older suite's).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import docker
from filelock import FileLock

from harness import paths
from harness.build.container import Container
from harness.build.deb import DebSpec, add_doc, build_deb, stage_tree, tar_tree
from harness.build.libs import minimum_libssl
from harness.errors import ConfigError

PACKAGE = "fetchmail-oauth"
REVISION = 1  # the Debian revision: bump when what this module ships changes
DEBIAN_RELEASES = {"bullseye": 11, "bookworm": 12, "trixie": 13}
# what the package ships of `make install`: no fetchmailconf (Python 2/Tk; Debian splits it off)
SHIPPED = (
    "usr/bin/fetchmail",
    "usr/share/man/man1/fetchmail.1",
    "usr/share/locale/*/LC_MESSAGES/fetchmail.mo",
)
UPSTREAM_DOCS = "usr/share/doc/fetchmail"  # where the build puts COPYING and NEWS
DISTRIBUTION = "fetchmail-oauth2-harness"
DEFAULT_MAINTAINER = "fetchmail-harness local build <root@localhost>"


def project_url() -> str:
    """The Homepage of this harness (pyproject.toml's [project.urls], from the installed
    distribution's metadata): named in the package as where its series come from."""
    try:
        entries = metadata.metadata(DISTRIBUTION).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return ""
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "homepage":
            return url.strip()
    return ""


def maintainer(env: Mapping[str, str] = os.environ) -> str:
    """The Maintainer field: DEBFULLNAME <DEBEMAIL> when set (as Debian's tools do)."""
    email = env.get("DEBEMAIL", "").strip()
    if not email:
        return DEFAULT_MAINTAINER
    name = env.get("DEBFULLNAME", "").strip()
    return f"{name} <{email}>" if name else email


def release_of(version_output: str) -> str:
    """'This is fetchmail release 6.4.33+SSL-...' -> '6.4.33' (7.0.0-alpha10 for next)."""
    match = re.search(r"fetchmail release (\d[^+\s,]*)", version_output)
    if not match:
        raise ConfigError(f"no release in the build's --version output: {version_output[:200]!r}")
    return match.group(1).rstrip(".")


def debian_upstream(release: str) -> str:
    """Pre-releases sort before their release in Debian: 6.5.0.beta7 -> 6.5.0~beta7."""
    return re.sub(r"[-.]?(alpha|beta|rc)(?=\d)", r"~\1", release)


def flavour(manifest: Mapping[str, Any]) -> str:
    """The series name, `native` for fetchmail 7 (`next`), `upstream` for an unpatched release."""
    if manifest.get("series"):
        return str(manifest["series"])
    return "native" if manifest.get("version") == "next" else "upstream"


def deb_version(manifest: Mapping[str, Any], release: str) -> str:
    distro = str(manifest["distro"])
    upstream = f"{debian_upstream(release)}+{flavour(manifest)}"
    if manifest.get("version") == "next":  # a branch: say which commit
        upstream += f".g{str(manifest['commit'])[:10]}"
    return f"{upstream}-{REVISION}~deb{DEBIAN_RELEASES[distro]}.{distro}"


def deb_spec(manifest: Mapping[str, Any], release: str, who: str | None = None) -> DebSpec:
    if manifest.get("sanitize"):
        raise ConfigError("a sanitizer build is for testing, not for installing: build the "
                          "package without --sanitize")
    distro = str(manifest["distro"])
    series = flavour(manifest)
    minimum = minimum_libssl(dict(manifest))
    what = {"native": "with its native OAuth2", "upstream": "unpatched"}.get(
        series, f"with the OAuth2 patch series {series}")
    return DebSpec(
        package=PACKAGE,
        version=deb_version(manifest, release),
        summary="fetchmail with OAuth2 (XOAUTH2, OAUTHBEARER) and passwordfile",
        description=(
            f"fetchmail {release} {what} (auth xoauth2, auth oauthbearer, passwordfile "
            f"re-read at every poll, long tokens), built for Debian {distro}.\n\n"
            "It takes the place of Debian's fetchmail package (Provides, Conflicts, "
            "Replaces: fetchmail) with the binary, the man page and the translations; no "
            "init script, no fetchmailconf. apt upgrade keeps it; apt install fetchmail "
            "goes back to Debian's."
        ),
        maintainer=who or maintainer(),
        homepage=project_url(),
        section="mail",
        provides=(f"fetchmail (= {debian_upstream(release)})",),
        conflicts=("fetchmail",),
        replaces=("fetchmail",),
        at_least=dict([minimum]) if minimum else {},
    )


def readme_debian(manifest: Mapping[str, Any], release: str, spec: DebSpec) -> str:
    """README.Debian: what this is, which patches, from where, and how apt treats it."""
    patches = manifest.get("patches") or {}
    lines = [
        f"{spec.package} {spec.version}",
        "",
        f"fetchmail {release} (upstream commit {manifest.get('commit')}), "
        f"built for Debian {manifest['distro']} in {manifest['image']['tag']}.",
        f"Patch series: {flavour(manifest)}"
        + (f" (content sha256 {manifest['series_hash']})" if manifest.get("series_hash") else ""),
    ]
    lines += [f"  {name}  sha256 {digest}" for name, digest in patches.items()]
    ssl = manifest.get("libssl") or {}
    if ssl:
        refuses = " (fetchmail refuses an older one at run time)" if ssl.get(
            "refuses_older") else ""
        lines += ["", f"Built against {ssl['package']} {ssl['version']} "
                      f"(OPENSSL_VERSION_NUMBER {ssl['headers']}){refuses}."]
    lines += [
        "",
        f"Made by the fetchmail OAuth2 patch harness: {spec.homepage or '(no URL configured)'}",
        "The manifest of the build is manifest.json beside this file.",
        "",
        f"This package is named {spec.package}, not fetchmail, and Provides, Conflicts and",
        "Replaces fetchmail: installing it removes Debian's fetchmail, and `apt upgrade` never",
        "replaces it with Debian's unpatched fetchmail (an upgrade keeps package names).",
        "Debian's security updates for fetchmail do not reach it: rebuild it for a new",
        "release. To go back to Debian's fetchmail: apt install fetchmail",
    ]
    return "\n".join(lines) + "\n"


def stage(destdir: Path, dest: Path, manifest: Mapping[str, Any], release: str,
          spec: DebSpec) -> None:
    """The package's files in `dest`: what SHIPPED picks from the build's DESTDIR, and docs."""
    stage_tree(destdir, dest, SHIPPED)
    docs = destdir / UPSTREAM_DOCS
    copying = docs / "COPYING"
    licence = copying.read_text(errors="replace") if copying.is_file() else ""
    add_doc(dest, spec.package, "copyright",
            f"fetchmail {release}: GPL-2.0-or-later with exceptions (below); on Debian the "
            "GPL-2 is in /usr/share/common-licenses/GPL-2.\n"
            f"OAuth2 patches: {spec.homepage or 'the fetchmail OAuth2 patch harness'}, "
            "GPL-2.0-or-later.\n\n" + licence)
    news = docs / "NEWS"
    if news.is_file():
        add_doc(dest, spec.package, "changelog", news.read_text(errors="replace"),
                compress=True)
    add_doc(dest, spec.package, "README.Debian", readme_debian(manifest, release, spec))
    add_doc(dest, spec.package, "manifest.json", json.dumps(manifest, indent=2) + "\n")


@dataclass(frozen=True)
class Packaged:
    deb: Path
    tarball: Path
    depends: str
    version: str
    cached: bool


def _key(manifest: Mapping[str, Any], spec: DebSpec) -> str:
    material = {"build": manifest["key"], "revision": REVISION, "spec": repr(spec)}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]


def tarball_name(spec: DebSpec, architecture: str) -> str:
    return f"{spec.package}_{spec.version.split(':')[-1]}_{architecture}.tar.gz"


def made_once(out: Path, make: Callable[[], None]) -> tuple[dict[str, Any], bool]:
    """A package directory made by `make` once (it ends by writing out/done.json), one maker
    at a time: (done.json's record, whether it was already there)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.parent / f".{out.name}.lock")):
        cached = (out / "done.json").is_file()
        if not cached:
            make()
    return json.loads((out / "done.json").read_text()), cached


def package(
    build_dir: Path,
    image: str,
    client: docker.DockerClient,
    *,
    cache: Path | None = None,
    who: str | None = None,
) -> Packaged:
    """The .deb and the tarball of the build in `build_dir` (made once, then from the cache).

    `build_dir` holds manifest.json, version.txt and destdir/ (the `make install DESTDIR`
    tree); `image` is the build image it was made in (dpkg-shlibdeps runs there).
    """
    manifest = json.loads((build_dir / "manifest.json").read_text())
    release = release_of((build_dir / "version.txt").read_text())
    spec = deb_spec(manifest, release, who)
    root = (cache or paths.cache_dir()) / "packages"
    out = root / f"{build_dir.name}-{_key(manifest, spec)}"
    record, cached = made_once(
        out, lambda: _make(build_dir, manifest, release, spec, image, client, out))
    return Packaged(out / record["deb"], out / record["tarball"], record["depends"],
                    spec.version, cached=cached)


def _make(build_dir: Path, manifest: Mapping[str, Any], release: str, spec: DebSpec,
          image: str, client: docker.DockerClient, out: Path) -> None:
    """Stage, package and tar into a scratch folder, then move it to `out` in one step."""
    work = Path(tempfile.mkdtemp(prefix=".pkg-", dir=out.parent))
    try:
        tree = work / "tree"
        stage(build_dir / "destdir", tree, manifest, release, spec)
        with Container(client, image, network_mode="none") as box:
            result = build_deb(box, spec, tree, work / "out")
            arch = result.deb.name.rsplit("_", 1)[-1].removesuffix(".deb")
            tarball = tar_tree(box, spec.package, work / "out", tarball_name(spec, arch))
        (work / "out" / "control").write_text(result.control)
        (work / "out" / "done.json").write_text(json.dumps({
            "deb": result.deb.name, "tarball": tarball.name, "depends": result.depends,
        }) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(work / "out", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
