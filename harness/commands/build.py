"""`fetchmail-harness build`: a (patched) fetchmail binary for a version and distro; with
`--deb` a Debian package of it, with `--tarball` its `make install` tree; with
`--xoauth2-plugin` the Cyrus SASL XOAUTH2 client plugin postfix relays with instead."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from harness.build import host, images
from harness.build.builder import BuildResult, BuildSpec, build, check_spec, default_series, export
from harness.build.distros import DEFAULT_DISTRO, DISTROS, Distro, check_distro
from harness.errors import ConfigError
from harness.series.advisories import ALLOW_FLAG, advisories_for
from harness.series.advisories import warning as insecure_warning
from harness.source.mirror import FetchmailSource, Source
from harness.source.tarball import TarballSource

NAME = "build"
HELP = "build fetchmail VERSION (patched with its series) in a container and print where it is"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", nargs="?",
                        help="fetchmail version, e.g. 6.4.33, 6.5.0.beta7, next")
    parser.add_argument("--distro", choices=sorted(DISTROS),
                        help="Debian suite to build for (default: this host's suite when it "
                             f"is one of them, else {DEFAULT_DISTRO})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--series", help="patch series (default: from patches/series.toml)")
    group.add_argument("--no-series", action="store_true", help="build unpatched upstream")
    parser.add_argument("--sanitize", action="store_true", help="ASan+UBSan build")
    parser.add_argument(
        "--patches-dir", type=Path, help="patch series directory (default patches/)"
    )
    parser.add_argument("--dist", type=Path,
                        help="copy the result to DIST: the binary's folder DIST/<identifier>/, "
                             "or the .deb / .tar.gz asked for")
    parser.add_argument("--deb", action="store_true",
                        help="a Debian package (fetchmail-oauth) for the suite, to install "
                             "with `apt install ./FILE.deb`")
    parser.add_argument("--tarball", action="store_true",
                        help="the `make install` tree (bin, man, locale, docs) as a .tar.gz")
    parser.add_argument("--upstream", help="git URL or path of fetchmail")
    parser.add_argument("--source-tarball", metavar="URL",
                        help="build from a release tarball (URL or path) instead of git")
    parser.add_argument("--sha256", help="the source tarball's sha256 (required with it)")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not echo the build log")
    parser.add_argument(ALLOW_FLAG, dest="allow_insecure", action="store_true",
                        help="build a release with known security holes anyway (see "
                             "`versions`); never use it to send real tokens")
    plugin = parser.add_argument_group("the XOAUTH2 plugin for postfix (instead of fetchmail)")
    plugin.add_argument("--xoauth2-plugin", action="store_true",
                        help="build cyrus-sasl-xoauth2's libxoauth2.so for the distro's postfix")
    plugin.add_argument("--plugin-upstream",
                        help="its git URL or path (default: $XOAUTH2_PLUGIN_UPSTREAM, else GitHub)")
    plugin.add_argument("--plugin-ref", help="branch, tag or commit (default: the default branch)")


def _echo(text: str) -> None:
    sys.stderr.write(text)


def _distro(args: argparse.Namespace) -> Distro:
    if args.distro:
        return check_distro(args.distro)
    distro, why = host.default_distro(DISTROS)
    print(f"distro:  {distro} ({why}; --distro chooses)")
    return distro


def _copy(path: Path, dist: Path | None) -> Path:
    if dist is None:
        return path
    dist.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dist / path.name)
    return dist / path.name


def _package(result: BuildResult, args: argparse.Namespace) -> None:
    from harness.build import package
    from harness.build.engine import ensure_engine

    client = ensure_engine()
    image, _ = images.ensure_build_image(client, result.spec.distro)
    made = package.package(result.dist_dir, image.tag, client)
    if args.deb:
        deb = _copy(made.deb, args.dist)
        print(f"deb:     {deb}")
        print(f"         {made.version}; Depends: {made.depends}")
        print(f"install: sudo apt install {deb if deb.is_absolute() else './' + str(deb)}")
    if args.tarball:
        print(f"tarball: {_copy(made.tarball, args.dist)}")


def run(args: argparse.Namespace) -> int:
    if args.xoauth2_plugin:
        return _plugin(args)
    if args.version is None:
        raise ConfigError("name a fetchmail VERSION to build (or --xoauth2-plugin)")
    source: Source
    if args.source_tarball:
        if not args.sha256:
            raise ConfigError("--source-tarball needs --sha256 (the checksum is always "
                              "verified)")
        source = TarballSource(args.source_tarball, args.sha256)
    else:
        source = FetchmailSource(args.upstream)
    version = source.resolve(args.version)
    series = None if args.no_series else args.series or default_series(version, args.patches_dir)
    if (args.deb or args.tarball) and args.sanitize:
        raise ConfigError("--deb and --tarball are for installing; a --sanitize build is for "
                          "testing: drop one of them")
    spec = BuildSpec(version, _distro(args), series, args.sanitize)
    check_spec(spec)
    if series is None and not args.no_series and not version.branch:
        raise ConfigError(
            f"no patch series covers fetchmail {version}, so it would build without OAuth.\n"
            f"`fetchmail-harness uncovered` lists the releases that need a series; "
            f"`fetchmail-harness rebase --onto {version}` carries the closest series to it; "
            "`--series NAME` tries one by hand; `--no-series` builds it unpatched")
    holes = advisories_for(version, args.patches_dir)
    if holes:
        if not args.allow_insecure:
            raise ConfigError(f"{insecure_warning(version, holes)}\nRefusing to build it: pass "
                              f"{ALLOW_FLAG} to build it anyway (for tests, not for mail)")
        print(insecure_warning(version, holes), file=sys.stderr)
    started = time.monotonic()
    echo = None if args.quiet else _echo
    result = build(spec, source=source, patches_dir=args.patches_dir, stream=echo)
    took = time.monotonic() - started
    state = "cached" if result.cached else f"built in {took:.1f}s"
    print(f"{spec.identifier}: {state}")
    if not args.deb and not args.tarball:
        where = export(result, args.dist) if args.dist else result.dist_dir
        print(f"binary:  {where / 'fetchmail'}")
    lines = result.version_output.splitlines()
    release = next((ln for ln in lines if "release" in ln), lines[0] if lines else "?")
    print(f"version: {release.strip()}")
    if args.deb or args.tarball:
        _package(result, args)
    if not args.deb:  # a raw binary (or tarball) runs on this host only with its libraries
        manifest = json.loads((result.dist_dir / "manifest.json").read_text())
        suite, why = host.default_distro(DISTROS)
        warning = host.libssl_warning(manifest, suite if why == host.HOST_SUITE else None)
        if warning:
            print(f"fetchmail-harness: {warning}", file=sys.stderr)
    if holes:
        print(f"WARNING: {version} has known security holes ({', '.join(a.id for a in holes)}); "
              "this build is for tests, not for mail")
    return 0


def _plugin(args: argparse.Namespace) -> int:
    from harness.relay.plugin import PluginSource, build_plugin, export_plugin

    if args.version is not None:
        raise ConfigError(f"--xoauth2-plugin builds no fetchmail: drop {args.version!r}")
    started = time.monotonic()
    result = build_plugin(_distro(args), source=PluginSource(args.plugin_upstream),
                          ref=args.plugin_ref, stream=None if args.quiet else _echo)
    where = export_plugin(result, args.dist) if args.dist else result.dist_dir
    state = "cached" if result.cached else f"built in {time.monotonic() - started:.1f}s"
    print(f"{result.identifier}: {state}")
    print(f"plugin:  {where / result.plugin.name}")
    print(f"install: install -m 644 {where / result.plugin.name} "
          "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/sasl2/")
    return 0
