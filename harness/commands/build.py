"""`fetchmail-harness build`: a (patched) fetchmail binary for a version and distro, or the
Cyrus SASL XOAUTH2 client plugin postfix relays with (`--xoauth2-plugin`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.build.builder import BuildSpec, build, check_spec, default_series, export, images
from harness.errors import ConfigError
from harness.source.mirror import FetchmailSource, Source
from harness.source.tarball import TarballSource

NAME = "build"
HELP = "build fetchmail VERSION (patched with its series) in a container and print where it is"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", nargs="?",
                        help="fetchmail version, e.g. 6.4.33, 6.5.0.beta7, next")
    parser.add_argument("--distro", default=images.DEFAULT_DISTRO, choices=sorted(images.DISTROS))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--series", help="patch series (default: from patches/series.toml)")
    group.add_argument("--no-series", action="store_true", help="build unpatched upstream")
    parser.add_argument("--sanitize", action="store_true", help="ASan+UBSan build")
    parser.add_argument(
        "--patches-dir", type=Path, help="patch series directory (default patches/)"
    )
    parser.add_argument("--dist", type=Path, help="also copy the result to DIST/<identifier>/")
    parser.add_argument("--upstream", help="git URL or path of fetchmail")
    parser.add_argument("--tarball", help="build from a release tarball (URL or path) instead")
    parser.add_argument("--sha256", help="the tarball's sha256 (required with --tarball)")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not echo the build log")
    plugin = parser.add_argument_group("the XOAUTH2 plugin for postfix (instead of fetchmail)")
    plugin.add_argument("--xoauth2-plugin", action="store_true",
                        help="build cyrus-sasl-xoauth2's libxoauth2.so for the distro's postfix")
    plugin.add_argument("--plugin-upstream",
                        help="its git URL or path (default: $XOAUTH2_PLUGIN_UPSTREAM, else GitHub)")
    plugin.add_argument("--plugin-ref", help="branch, tag or commit (default: the default branch)")


def _echo(text: str) -> None:
    sys.stderr.write(text)


def run(args: argparse.Namespace) -> int:
    if args.xoauth2_plugin:
        return _plugin(args)
    if args.version is None:
        raise ConfigError("name a fetchmail VERSION to build (or --xoauth2-plugin)")
    source: Source
    if args.tarball:
        if not args.sha256:
            raise ConfigError("--tarball needs --sha256 (the checksum is always verified)")
        source = TarballSource(args.tarball, args.sha256)
    else:
        source = FetchmailSource(args.upstream)
    version = source.resolve(args.version)
    series = None if args.no_series else args.series or default_series(version, args.patches_dir)
    spec = BuildSpec(str(version), args.distro, series, args.sanitize)
    check_spec(spec, args.patches_dir)
    if series is None and not args.no_series and not version.branch:
        raise ConfigError(
            f"no patch series covers fetchmail {version}, so it would build without OAuth.\n"
            f"`fetchmail-harness uncovered` lists the releases that need a series; "
            f"`fetchmail-harness rebase --onto {version}` carries the closest series to it; "
            "`--series NAME` tries one by hand; `--no-series` builds it unpatched")
    started = time.monotonic()
    echo = None if args.quiet else _echo
    result = build(spec, source=source, patches_dir=args.patches_dir, stream=echo)
    took = time.monotonic() - started
    where = export(result, args.dist) if args.dist else result.dist_dir
    state = "cached" if result.cached else f"built in {took:.1f}s"
    print(f"{spec.identifier}: {state}")
    print(f"binary:  {where / 'fetchmail'}")
    lines = result.version_output.splitlines()
    release = next((ln for ln in lines if "release" in ln), lines[0] if lines else "?")
    print(f"version: {release.strip()}")
    return 0


def _plugin(args: argparse.Namespace) -> int:
    from harness.relay.plugin import PluginSource, build_plugin, export_plugin

    if args.version is not None:
        raise ConfigError(f"--xoauth2-plugin builds no fetchmail: drop {args.version!r}")
    started = time.monotonic()
    result = build_plugin(args.distro, source=PluginSource(args.plugin_upstream),
                          ref=args.plugin_ref, stream=None if args.quiet else _echo)
    where = export_plugin(result, args.dist) if args.dist else result.dist_dir
    state = "cached" if result.cached else f"built in {time.monotonic() - started:.1f}s"
    print(f"{result.identifier}: {state}")
    print(f"plugin:  {where / result.plugin.name}")
    print(f"install: install -m 644 {where / result.plugin.name} "
          "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/sasl2/")
    return 0
