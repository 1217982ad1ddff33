"""The XOAUTH2 plugin of a finished plugin build as a Debian package, for postfix's libsasl2.

Packaged with the generic packager (harness.build.deb) in the relay image the plugin was built
in (it has dpkg-dev and libsasl2-dev): libxoauth2.so in the multiarch plugin directory
/usr/lib/<triplet>/sasl2/, Depends from dpkg-shlibdeps plus the libsasl2-2 it was built
against, the plugin's COPYING (MIT) as the copyright file.

Name: libsasl2-modules-xoauth2-moriyoshi (Debian has no such package; its XOAUTH2 plugin is
libsasl2-modules-kdexoauth2). It Conflicts with that one although no file clashes: both
register the client mechanism XOAUTH2 in one directory, libsasl2 takes whichever readdir
returns first, and postfix cannot relay with the KDE one.

Version: <last release tag>+git<commit date>.g<short hash>-<revision>~deb<N>.<suite>,
e.g. 0.2+git20210810.g36aabca-1~deb12.bookworm.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from harness import paths
from harness.build.container import Container
from harness.build.deb import DebSpec, add_doc, build_deb, multiarch
from harness.build.package import DEBIAN_RELEASES, made_once, maintainer, project_url
from harness.errors import BuildError
from harness.relay.plugin import PLUGIN_FILE, PluginBuild, PluginSource

PACKAGE = "libsasl2-modules-xoauth2-moriyoshi"
CONFLICTS = ("libsasl2-modules-kdexoauth2",)
REVISION = 1  # the Debian revision: bump when what this module ships changes
UPSTREAM_URL = "https://github.com/moriyoshi/cyrus-sasl-xoauth2"


@dataclass(frozen=True)
class PluginPackage:
    deb: Path
    version: str
    depends: str
    cached: bool


def upstream_version(source: PluginSource, commit: str) -> str:
    """'0.2+git20210810.g36aabca': the last release tag before `commit`, its date, its hash."""
    repo = source.mirror.repo()
    try:
        tag = str(repo.git.describe("--tags", "--match", "v[0-9]*", "--abbrev=0", commit))
        release = tag.removeprefix("v")
    except git.GitCommandError:  # no release before it
        release = "0"
    date = str(repo.git.show("-s", "--format=%cd", "--date=format:%Y%m%d", commit)).strip()
    return f"{release}+git{date}.g{commit[:7]}"


def licence_text(source: PluginSource, commit: str) -> str:
    """The plugin's own licence file at `commit` (COPYING, else LICENSE)."""
    repo = source.mirror.repo()
    for name in ("COPYING", "LICENSE"):
        try:
            return str(repo.git.show(f"{commit}:{name}")) + "\n"
        except git.GitCommandError:
            continue
    raise BuildError(f"cyrus-sasl-xoauth2 {commit[:12]} has no COPYING or LICENSE to ship")


def deb_spec(build: PluginBuild, version: str, sasl: str, who: str | None = None) -> DebSpec:
    distro = str(build.distro)
    return DebSpec(
        package=PACKAGE,
        version=f"{version}-{REVISION}~deb{DEBIAN_RELEASES[distro]}.{distro}",
        summary="Cyrus SASL XOAUTH2 mechanism (moriyoshi/cyrus-sasl-xoauth2)",
        description=(
            f"The XOAUTH2 client and server plugin of cyrus-sasl-xoauth2 (commit "
            f"{build.commit[:12]}), built for Debian {distro}. postfix relays with it: the "
            "OAuth2 access token is the password of the smtp_sasl_password_maps entry.\n\n"
            "It conflicts with libsasl2-modules-kdexoauth2, which registers the same "
            "mechanism and which postfix cannot use."
        ),
        maintainer=who or maintainer(),
        homepage=UPSTREAM_URL,
        section="libs",
        conflicts=CONFLICTS,
        at_least={"libsasl2-2": sasl},
    )


def readme_debian(build: PluginBuild, spec: DebSpec, sasl: str) -> str:
    return "\n".join([
        f"{spec.package} {spec.version}",
        "",
        f"cyrus-sasl-xoauth2 commit {build.commit} ({UPSTREAM_URL}),",
        f"built for Debian {build.distro} against libsasl2 {sasl}.",
        f"Made by the fetchmail OAuth2 patch harness: {project_url() or '(no URL configured)'}",
        "",
        "postfix: smtp_sasl_auth_enable = yes, smtp_sasl_mechanism_filter = xoauth2, and the",
        "access token as the password in smtp_sasl_password_maps.",
        "",
    ])


def _upstream_sasl(version: str) -> str:
    """'2.1.28+dfsg-10' -> '2.1.28': the release the plugin was compiled against."""
    return re.split(r"[+~-]", version.split(":", 1)[-1], maxsplit=1)[0]


def package_plugin(
    build: PluginBuild,
    source: PluginSource,
    client: Any,
    *,
    cache: Path | None = None,
    who: str | None = None,
) -> PluginPackage:
    """The .deb of `build` (made once, then from <cache>/packages/)."""
    manifest = json.loads((build.dist_dir / "manifest.json").read_text())
    sasl = _upstream_sasl(str(manifest["libsasl2"]))
    spec = deb_spec(build, upstream_version(source, build.commit), sasl, who)
    key = hashlib.sha256(json.dumps({"build": build.key, "spec": repr(spec)}).encode())
    root = (cache or paths.cache_dir()) / "packages"
    out = root / f"plugin-{build.distro}-{build.commit[:12]}-{key.hexdigest()[:12]}"
    record, cached = made_once(
        out, lambda: _make(build, source, spec, sasl, manifest["image"]["tag"], client, out))
    return PluginPackage(out / record["deb"], spec.version, record["depends"], cached)


def _make(build: PluginBuild, source: PluginSource, spec: DebSpec, sasl: str, image: str,
          client: Any, out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=".pkg-", dir=out.parent))
    try:
        tree = work / "tree"
        with Container(client, image, network_mode="none") as box:
            plugin_dir = tree / "usr" / "lib" / multiarch(box) / "sasl2"
            plugin_dir.mkdir(parents=True)
            shutil.copyfile(build.plugin, plugin_dir / PLUGIN_FILE)
            (plugin_dir / PLUGIN_FILE).chmod(0o644)
            for directory in [tree, *(p for p in tree.rglob("*") if p.is_dir())]:
                directory.chmod(0o755)
            add_doc(tree, spec.package, "copyright",
                    f"cyrus-sasl-xoauth2 ({UPSTREAM_URL}): MIT\n\n"
                    + licence_text(source, build.commit))
            add_doc(tree, spec.package, "README.Debian", readme_debian(build, spec, sasl))
            result = build_deb(box, spec, tree, work / "out")
        (work / "out" / "control").write_text(result.control)
        (work / "out" / "done.json").write_text(json.dumps(
            {"deb": result.deb.name, "depends": result.depends}) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(work / "out", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
