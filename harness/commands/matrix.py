"""`fetchmail-harness matrix`: list or run the version x distro x protocol x mechanism matrix,
and the relay cells (postfix of each distro x scenario)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from harness import paths
from harness.build.distros import DISTROS, parse_distros
from harness.cell.kinds import MatrixCell
from harness.cell.model import DEFAULT_SERVER, PACKAGED, SANITIZERS, SERVERS, Cell, Server, one_of
from harness.cell.relay import relay_cells
from harness.errors import ConfigError
from harness.matrix.select import Selector, cells_for, group_by_build

NAME = "matrix"
HELP = "list or run end-to-end matrix cells (builds shared, cells in parallel, results cached)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--select", action="append", metavar="GLOBS",
        help="comma-separated fnmatch globs over cell identifiers, !GLOB excludes "
             "(repeatable; default: every cell), e.g. '6.4.*-*-bookworm-imap-*,!*-daemon' "
             "or 'relay-*' (postfix relaying with XOAUTH2)",
    )
    parser.add_argument("--upstream", help="git URL or path of fetchmail")
    parser.add_argument("--plugin-upstream",
                        help="git URL or path of cyrus-sasl-xoauth2, the relay cells' plugin "
                        "(default: $XOAUTH2_PLUGIN_UPSTREAM, else GitHub)")
    parser.add_argument("--patches-dir", type=Path, help="patch series dir (default patches/)")
    parser.add_argument("--distros", default=",".join(DISTROS),
                        help=f"comma-separated distros (default {','.join(DISTROS)})")
    parser.add_argument("--servers", default=DEFAULT_SERVER,
                        help="comma-separated mail servers the cells talk to: mock (the "
                        "project's), dovecot (Debian's Dovecot 2.3 in a container); default "
                        f"{DEFAULT_SERVER}; non-default ones end the identifier (…-tls-dovecot)")
    parser.add_argument("--with-asan", action="store_true",
                        help="add AddressSanitizer cells (implied by a glob with '+asan')")
    parser.add_argument("--with-deb", action="store_true",
                        help="add cells that run the fetchmail each build's .deb installs with "
                             "apt in a fresh base container (DISTRO+deb; implied by a glob "
                             "with '+deb')")
    parser.add_argument("--jobs", "-j", type=int, default=2,
                        help="builds running their steps at once (2; one waiting for its "
                             "family's first configure or compile lets another run); twice "
                             "as many cells run at once")
    parser.add_argument("--list", action="store_true", help="print the selected cells, run nothing")
    parser.add_argument("--json", action="store_true",
                        help="with --list: JSON (cells, build groups, CI matrix include list)")
    parser.add_argument("--chunks", type=int, default=0,
                        help="with --list --json: spread build groups over at most N CI jobs")
    parser.add_argument("--report-dir", type=Path, default=Path("matrix-report"),
                        help="where junit.xml, results.json, matrix.md and logs/ go")
    parser.add_argument("--no-cache", action="store_true", help="rerun cells with cached results")
    parser.add_argument("--chunk", metavar="I/N",
                        help="run only the I-th (1-based) of N chunks of the selected build "
                        "groups, dealt as --list --json --chunks N deals them (CI jobs)")
    parser.add_argument("--dist", type=Path, metavar="DIR",
                        help="also export every build the cells used, run or cached, to "
                        "DIR/<build>/ (binary, log, manifest, packages)")


def select_cells(args: argparse.Namespace) -> list[MatrixCell]:
    from harness.source.mirror import FetchmailSource

    selector = Selector.parse(args.select)
    distros = parse_distros(args.distros)
    servers: list[Server] = [one_of("server", s, SERVERS) for s in args.servers.split(",") if s]
    if not servers:
        raise ConfigError(f"--servers names no server (one of {', '.join(SERVERS)})")
    sanitizers = SANITIZERS if args.with_asan or selector.mentions("asan") else ()
    packaged = args.with_deb or selector.mentions(PACKAGED)
    versions = FetchmailSource(args.upstream).versions()
    universe: list[MatrixCell] = [
        *cells_for(versions, patches_dir=args.patches_dir, distros=distros,
                   sanitizers=sanitizers, packaged=packaged, servers=servers),
        *relay_cells(distros),
    ]
    return selector.select(universe)


def deal(groups: list[str], chunks: int) -> list[list[str]]:
    """Build groups spread round-robin over at most `chunks` batches (0: one batch each)."""
    if chunks and chunks < len(groups):
        return [groups[i::chunks] for i in range(chunks)]
    return [[g] for g in groups]


def ci_matrix(cells: list[MatrixCell], chunks: int) -> dict[str, Any]:
    """{"cells", "groups", "include"}: `include` is a GitHub Actions matrix, one build per entry
    unless `chunks` caps the number of jobs (then groups are dealt round-robin). Each entry
    names its jobs' build groups, cells (`select`) and distros (comma-separated)."""
    groups = group_by_build(cells)
    selects = {g: ",".join(c.identifier for c in members) for g, members in groups.items()}
    include = [
        {"name": "+".join(batch) if len(batch) <= 2 else f"{batch[0]}+{len(batch) - 1} more",
         "select": ",".join(selects[g] for g in batch),
         "distros": ",".join(sorted({groups[g][0].distro for g in batch}))}
        for batch in deal(list(groups), chunks)
    ]
    return {
        "cells": [c.identifier for c in cells],
        "groups": {g: [c.identifier for c in m] for g, m in groups.items()},
        "include": include,
    }


def chunk_of(cells: list[MatrixCell], spec: str) -> list[MatrixCell]:
    """The cells of chunk "I/N" (1-based I); an index past the dealt batches is empty."""
    match = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ConfigError(f"--chunk wants I/N with 1 <= I <= N, not {spec!r}")
    index, total = int(match[1]), int(match[2])
    groups = group_by_build(cells)
    batches = deal(list(groups), total)
    if index > len(batches):
        return []
    return [cell for group in batches[index - 1] for cell in groups[group]]


def run(args: argparse.Namespace) -> int:
    cells = select_cells(args)
    if args.list:
        if args.json:
            print(json.dumps(ci_matrix(cells, args.chunks)))
        else:
            for group, members in group_by_build(cells).items():
                print(f"# build {group}")
                for cell in members:
                    print(cell.identifier)
        return 0
    if args.jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    if args.chunk:
        cells = chunk_of(cells, args.chunk)
        print(f"chunk {args.chunk}: {len(cells)} cells", file=sys.stderr)
    return execute(cells, args)


def _note_insecure(cells: list[MatrixCell], patches_dir: Path | None) -> None:
    from harness.series.advisories import advisories_for

    versions = sorted({c.version for c in cells if isinstance(c, Cell)})
    insecure = [v for v in versions if advisories_for(v, patches_dir)]
    if insecure:
        print(f"note: {len(insecure)} of {len(versions)} releases in this run have known "
              f"security holes ({insecure[0]}..{insecure[-1]}, see `versions`): the matrix "
              "tests them; builds for use need `build --allow-insecure-release`",
              file=sys.stderr)


def execute(cells: list[MatrixCell], args: argparse.Namespace) -> int:
    """Run `cells` with the Docker backend, print a summary, write the reports."""
    from harness.matrix.backend import DockerBackend
    from harness.matrix.progress import Progress
    from harness.matrix.reports import write_reports
    from harness.matrix.runner import ResultCache, run_matrix

    backend = DockerBackend(upstream=args.upstream, patches_dir=args.patches_dir,
                            plugin_upstream=args.plugin_upstream)
    report_dir: Path = args.report_dir
    _note_insecure(cells, args.patches_dir)
    progress = Progress(len(cells))
    try:
        outcome = run_matrix(
            cells, backend, jobs=args.jobs,
            cache=None if args.no_cache else ResultCache(),
            log_dir=paths.cache_dir() / "cell-logs", on_event=progress,
        )
    finally:
        progress.close()
    written = write_reports(outcome.results, report_dir, duration=outcome.duration,
                            builds=outcome.builds)
    counts = outcome.counts()
    cached = sum(r.cached for r in outcome.results)
    print(
        f"{len(outcome.results)} cells in {outcome.duration:.1f}s: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + f" ({cached} from cache)",
        file=sys.stderr,
    )
    for r in outcome.results:
        if not r.ok:
            print(f"  {r.summary()}", file=sys.stderr)
    print(f"reports: {', '.join(str(p) for p in written.values())}", file=sys.stderr)
    if args.dist:
        exported = export_builds(backend, cells, args.dist)
        print(f"builds exported to {args.dist}: {exported}", file=sys.stderr)
    return outcome.exit_code


def export_builds(backend: Any, cells: list[MatrixCell], dist: Path) -> int:
    """Every build the cells use (fetchmail, or the relay cells' XOAUTH2 plugin), into dist/
    (from the build cache: the runner skips builds whose cells all came from the result cache,
    the binaries artifact must not be empty). A build that fails here failed in the run too
    and is reported there; returns the count."""
    from harness.build.builder import export
    from harness.errors import HarnessError
    from harness.relay.plugin import export_plugin

    dist.mkdir(parents=True, exist_ok=True)
    exported = 0
    for members in group_by_build(cells).values():
        if members[0].unsupported:
            continue
        try:
            built = backend.build(members[0])
            if isinstance(members[0], Cell):
                export(built, dist)
            else:
                export_plugin(built, dist)
        except HarnessError as exc:
            print(f"  not exported: {members[0].build_group}: {str(exc).splitlines()[0]}",
                  file=sys.stderr)
            continue
        exported += 1
    return exported
