"""Throwaway patches and series for tests (made with diff -u, shaped like git format-patch)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def format_patch(subject: str, diffs: list[tuple[str, str, str]]) -> str:
    """A `git format-patch`-style patch from (path, old text, new text) triples."""
    body = [
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001",
        "From: Test <test@example.invalid>",
        f"Subject: [PATCH] {subject}",
        "",
        "---",
    ]
    out = "\n".join(body) + "\n"
    for rel, old, new in diffs:
        work = Path(subprocess.check_output(["mktemp", "-d"], text=True).strip())
        try:
            (work / "old").write_text(old)
            (work / "new").write_text(new)
            proc = subprocess.run(
                ["diff", "-u", "--label", f"a/{rel}", "--label", f"b/{rel}", "old", "new"],
                cwd=work, capture_output=True, text=True,
            )
            assert proc.returncode == 1, proc.stderr
            out += f"diff --git a/{rel} b/{rel}\n" + proc.stdout
        finally:
            shutil.rmtree(work)
    return out + "-- \n2.39.0\n"


def edit_lines(text: str, anchor: str, insert: list[str], *, offset: int = 1) -> str:
    """Insert lines `offset` lines after the first line containing `anchor`."""
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if anchor in line) + offset
    return "".join(lines[:at] + [f"{x}\n" for x in insert] + lines[at:])


def write_series(
    root: Path, name: str, patches: dict[str, str], *, base: str = "6.4.33"
) -> Path:
    """patches/<name>/ with series.toml and the given patch files (in order)."""
    directory = root / name
    directory.mkdir(parents=True)
    for file, text in patches.items():
        (directory / file).write_text(text)
    listed = ", ".join(f'"{f}"' for f in patches)
    (directory / "series.toml").write_text(
        f'name = "{name}"\nbase = "{base}"\ndescription = "test series"\npatches = [{listed}]\n'
    )
    return directory


def write_table(root: Path, ranges: list[tuple[str, str, str, int]]) -> None:
    text = ""
    for series, first, last, fuzz in ranges:
        text += (
            f'[[range]]\nseries = "{series}"\nfirst = "{first}"\nlast = "{last}"\n'
            f"max_fuzz = {fuzz}\n\n"
        )
    (root / "series.toml").write_text(text)
