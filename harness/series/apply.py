"""Apply a patch series to a fetchmail tree with GNU patch and report how each patch went."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import PatchError
from harness.series.table import Series

CLEAN, OFFSET, FUZZ, FAILED = "clean", "offset", "fuzz", "failed"
_RANK = {CLEAN: 0, OFFSET: 1, FUZZ: 2, FAILED: 3}

_FILE = re.compile(r"^(?:patching|checking) file '?(.+?)'?(?: \(read from .*\))?$")
_HUNK_OK = re.compile(
    r"^Hunk #(\d+) succeeded at (\d+)(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?\.$"
)
_HUNK_FAILED = re.compile(r"^Hunk #(\d+) FAILED at (\d+)")
_REVERSED = re.compile(r"Reversed \(or previously applied\) patch detected")
_CREATES = re.compile(r"^The next patch would create the file (.+?),?$")
_NO_FILE = re.compile(r"^can't find file to patch at input line (\d+)")
_GARBAGE = re.compile(r"^Only garbage was found in the patch input")
_MALFORMED = re.compile(r"^patch: \*\*\*\* (.*)$")


@dataclass(frozen=True)
class PatchResult:
    """How one patch applied: status is clean / offset / fuzz / failed."""

    name: str
    status: str
    files: tuple[str, ...]
    max_offset: int  # largest |offset| in lines over its hunks
    fuzz: int  # highest fuzz level used
    failures: tuple[str, ...]  # "imap.c: hunk #3 at line 812", "already applied", ...
    output: str  # GNU patch's own words

    @property
    def applied(self) -> bool:
        return self.status != FAILED

    def summary(self) -> str:
        detail = {
            CLEAN: "",
            OFFSET: f" (offset up to {self.max_offset} lines)",
            FUZZ: f" (fuzz {self.fuzz}, offset up to {self.max_offset} lines)",
            FAILED: ": " + "; ".join(self.failures),
        }[self.status]
        return f"{self.status:7} {self.name}{detail}"


@dataclass(frozen=True)
class ApplyReport:
    series: str
    tree: Path
    max_fuzz: int | None  # None: no limit (a series outside its table range)
    dry_run: bool
    results: tuple[PatchResult, ...]

    @property
    def failed(self) -> tuple[PatchResult, ...]:
        return tuple(r for r in self.results if r.status == FAILED)

    @property
    def fuzz(self) -> int:
        return max((r.fuzz for r in self.results), default=0)

    @property
    def fuzz_exceeded(self) -> bool:
        return self.max_fuzz is not None and self.fuzz > self.max_fuzz

    @property
    def ok(self) -> bool:
        return not self.failed and not self.fuzz_exceeded

    def render(self) -> str:
        limit = "no limit" if self.max_fuzz is None else str(self.max_fuzz)
        mode = " (dry run)" if self.dry_run else ""
        lines = [f"series {self.series} on {self.tree}{mode}, max fuzz {limit}:"]
        lines += [f"  {r.summary()}" for r in self.results]
        if self.failed:
            lines.append(f"FAILED: {len(self.failed)} of {len(self.results)} patches did not apply")
        elif self.fuzz_exceeded:
            lines.append(f"FAILED: fuzz {self.fuzz} exceeds the table's max_fuzz {self.max_fuzz}")
        else:
            lines.append(f"OK: {len(self.results)} patches applied")
        return "\n".join(lines)


def parse_patch_output(name: str, output: str, returncode: int) -> PatchResult:
    """Read GNU patch's report of one patch into a PatchResult."""
    files: list[str] = []
    failures: list[str] = []
    current = "?"
    max_offset = fuzz = 0
    offsets = False
    for line in output.splitlines():
        line = line.strip()
        if m := _FILE.match(line):
            current = m[1]
            files.append(current)
        elif m := _HUNK_OK.match(line):
            if m[3]:
                fuzz = max(fuzz, int(m[3]))
            if m[4]:
                offsets = True
                max_offset = max(max_offset, abs(int(m[4])))
        elif m := _HUNK_FAILED.match(line):
            failures.append(f"{current}: hunk #{m[1]} at line {m[2]}")
        elif _REVERSED.search(line):
            failures.append(f"{current}: already applied (or reversed)")
        elif m := _CREATES.match(line):
            failures.append(f"{m[1]}: would create a file that already exists")
        elif m := _NO_FILE.match(line):
            failures.append(f"no file to patch (patch input line {m[1]})")
        elif _GARBAGE.match(line):
            failures.append("not a patch (only garbage in the input)")
        elif m := _MALFORMED.match(line):
            failures.append(m[1])
    if returncode != 0 and not failures:
        failures.append(f"patch exited with status {returncode}")
    if failures:
        status = FAILED
    elif fuzz:
        status = FUZZ
    elif offsets:
        status = OFFSET
    else:
        status = CLEAN
    return PatchResult(name, status, tuple(files), max_offset, fuzz, tuple(failures), output)


def _run_patch(patch: Path, tree: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("patch") is None:
        raise PatchError("GNU patch is not installed (apt-get install patch)")
    return subprocess.run(
        ["patch", "-p1", "--forward", "--batch", "--no-backup-if-mismatch", "-i", str(patch)],
        cwd=tree,
        capture_output=True,
        text=True,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )


def apply_series(
    series: Series, tree: Path, *, max_fuzz: int | None = 0, dry_run: bool = False
) -> ApplyReport:
    """Apply every patch of `series` in order to `tree` (a copy of it when dry_run).

    Later patches are still tried after a failure, so the report shows all of them; check
    report.ok (or use require_ok) before building on the result.
    """
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="fmh-dry-") as tmp:
            copy = Path(tmp) / "tree"
            shutil.copytree(tree, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
            report = apply_series(series, copy, max_fuzz=max_fuzz)
        return ApplyReport(series.name, tree, max_fuzz, True, report.results)
    results = []
    for patch in series.patches:
        proc = _run_patch(patch.path, tree)
        results.append(parse_patch_output(patch.name, proc.stdout + proc.stderr, proc.returncode))
    return ApplyReport(series.name, tree, max_fuzz, False, tuple(results))


def require_ok(report: ApplyReport) -> ApplyReport:
    """The report, or PatchError carrying its rendering."""
    if not report.ok:
        raise PatchError(report.render())
    return report
