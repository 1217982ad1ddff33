"""`fetchmail-harness report`: merge matrix report dirs (one per CI job) into one report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import ConfigError

NAME = "report"
HELP = "merge matrix report dirs (one per CI job) into one; print the Markdown summary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                        help="report dirs written by `matrix --report-dir`")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write the merged junit.xml, results.json, matrix.md and logs/ here")
    parser.add_argument("--logs-url", metavar="URL",
                        help="log links in the printed summary: URL + logs/<cell>.log when it "
                        "ends in '/', else URL (an archive of the report) for every log")


def run(args: argparse.Namespace) -> int:
    from harness.matrix.merge import link_logs, read_reports
    from harness.matrix.reports import markdown, write_reports

    if args.out is not None and any(d.resolve() == args.out.resolve() for d in args.dirs):
        raise ConfigError(f"--out {args.out} is one of the report dirs being merged")
    merged = read_reports(args.dirs)
    if args.out is not None:
        write_reports(merged.results, args.out, duration=merged.duration, builds=merged.builds)
    relative = {r.identifier: f"logs/{r.identifier}.log" for r in merged.results if r.log}
    text = markdown(merged.results, link_logs(relative, args.logs_url))
    if merged.problems:
        text += "\n## Reports that could not be merged\n\n" + "".join(
            f"- {problem}\n" for problem in merged.problems)
    sys.stdout.write(text)
    for problem in merged.problems:
        print(f"report: {problem}", file=sys.stderr)
    return 1 if merged.problems else 0
