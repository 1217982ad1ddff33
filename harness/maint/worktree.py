"""The maintainer worktree of a rebase: a git clone of the mirror where a series becomes commits.

Plain `git` subprocesses (am, cherry-pick, format-patch): their exit codes and conflict state
are what the rebase reports, so they are not wrapped any further than this.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SourceError

COMMITTER = ("fetchmail-harness rebase", "rebase@fetchmail-harness.invalid")
_OFFSET = re.compile(r"Hunk #\d+ succeeded at \d+ \(offset (-?\d+) lines?\)")
_START = "<<<<<<< "
_BASE = "||||||| "
_END = ">>>>>>> "
CONTEXT = 3  # lines shown around a conflict
MAX_SHOWN = 120  # lines of conflicts shown per file


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(LC_ALL="C", GIT_EDITOR="true", GIT_TERMINAL_PROMPT="0")
    return env


@dataclass(frozen=True)
class Conflict:
    """One conflicted file: git's two-letter state and the marker regions with context."""

    path: str
    state: str  # UU (both modified), DU (deleted by us), UD (deleted by them), AA, ...
    hunks: tuple[str, ...]

    def describe(self) -> str:
        if self.state == "UU" and not self.hunks:
            return f"{self.path} (no markers left, but not `git add`ed yet)"
        what = {
            "UU": "both modified",
            "AA": "both added",
            "DU": "deleted upstream, changed by the patch",
            "UD": "changed upstream, deleted by the patch",
            "DD": "deleted by both",
            "AU": "added upstream",
            "UA": "added by the patch",
        }.get(self.state, self.state)
        return f"{self.path} ({what})"


class MaintainerTree:
    """A non-bare clone (sharing the mirror's objects) with a branch per step of the rebase."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["git", "-c", f"user.name={COMMITTER[0]}", "-c", f"user.email={COMMITTER[1]}",
             "-c", "merge.conflictStyle=diff3", "-c", "advice.detachedHead=false",
             "-c", "core.autocrlf=false", *args],
            cwd=self.path, capture_output=True, text=True, input=stdin, env=_env(),
        )
        if check and proc.returncode != 0:
            raise SourceError(
                f"git {' '.join(args)} failed in {self.path}:\n"
                + (proc.stderr or proc.stdout).strip()
            )
        return proc

    @classmethod
    def clone(cls, mirror: Path, path: Path) -> MaintainerTree:
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["git", "clone", "--quiet", "--shared", "--no-checkout", str(mirror), str(path)],
            capture_output=True, text=True, env=_env(),
        )
        if proc.returncode != 0:
            raise SourceError(f"cannot clone {mirror} into {path}: {proc.stderr.strip()}")
        return cls(path)

    def exists(self) -> bool:
        return (self.path / ".git").is_dir()

    # -- state ----------------------------------------------------------------------------------

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def rev(self, ref: str) -> str:
        return self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").stdout.strip()

    def dirty(self) -> list[str]:
        """Tracked files with uncommitted changes, staged or not (porcelain lines)."""
        out = self.git("status", "--porcelain", "--untracked-files=no").stdout
        return [line for line in out.splitlines() if line.strip()]

    def unstaged(self) -> list[str]:
        return self.git("diff", "--name-only").stdout.split()

    def staged_nothing(self) -> bool:
        return self.git("diff", "--cached", "--quiet", check=False).returncode == 0

    def picking(self) -> bool:
        """A cherry-pick is stopped, waiting for its conflicts to be resolved."""
        return self._has("CHERRY_PICK_HEAD")

    def _has(self, ref: str) -> bool:
        return self.git("rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0

    def unmerged(self) -> list[Conflict]:
        out = self.git("status", "--porcelain", "--untracked-files=no").stdout
        found = []
        for line in out.splitlines():
            state, path = line[:2], line[3:]
            if state in ("UU", "AA", "DU", "UD", "DD", "AU", "UA"):
                found.append(Conflict(path, state, tuple(self._marker_hunks(path))))
        return found

    def staged_markers(self) -> list[str]:
        """Files whose staged content still adds conflict markers."""
        diff = self.git("diff", "--cached", "HEAD", "--unified=0").stdout
        hits: list[str] = []
        current = "?"
        for line in diff.splitlines():
            if line.startswith("+++ b/"):
                current = line[6:]
            elif (line.startswith(("+" + _START, "+" + _END, "+" + _BASE))
                  and current not in hits):
                hits.append(current)
        return hits

    def _marker_hunks(self, path: str) -> list[str]:
        """Each conflict region with CONTEXT lines around it (overlapping ones joined)."""
        file = self.path / path
        if not file.is_file():
            return []
        lines = file.read_text(errors="replace").splitlines()
        spans: list[list[int]] = []
        i = 0
        while i < len(lines):
            if not lines[i].startswith(_START):
                i += 1
                continue
            end = i
            while end < len(lines) and not lines[end].startswith(_END):
                end += 1
            lo, hi = max(0, i - CONTEXT), min(len(lines), end + 1 + CONTEXT)
            if spans and lo <= spans[-1][1]:
                spans[-1][1] = hi
            else:
                spans.append([lo, hi])
            i = end + 1
        shown = 0
        hunks: list[str] = []
        for lo, hi in spans:
            if shown + hi - lo > MAX_SHOWN:
                rest = sum(end - start for start, end in spans[len(hunks):])
                hunks.append(f"        ... {rest} more lines with conflicts in {path}")
                break
            hunks.append("\n".join(f"{n + 1:6}  {lines[n]}" for n in range(lo, hi)))
            shown += hi - lo
        return hunks

    # -- steps ----------------------------------------------------------------------------------

    def checkout_branch(self, branch: str, start: str) -> None:
        self.git("checkout", "--quiet", "--force", "-B", branch, start)

    def am(self, patch: Path) -> subprocess.CompletedProcess[str]:
        proc = self.git("am", "--quiet", str(patch), check=False)
        if proc.returncode != 0:
            self.git("am", "--abort", check=False)
        return proc

    def apply_check(self, commit: str) -> tuple[bool, int]:
        """Would the commit's patch apply to HEAD as it is (no merge)? And its largest offset."""
        patch = self.git("format-patch", "-1", "--stdout", commit).stdout
        proc = self.git("apply", "--check", "--verbose", "-", stdin=patch, check=False)
        offsets = [abs(int(m[1])) for m in _OFFSET.finditer(proc.stdout + proc.stderr)]
        return proc.returncode == 0, max(offsets, default=0)

    def cherry_pick(self, commit: str) -> str:
        """"picked", "empty" (nothing left to change) or "conflict" (stopped, markers in files)."""
        proc = self.git("cherry-pick", "--allow-empty-message", commit, check=False)
        if proc.returncode == 0:
            return "picked"
        if self.unmerged():
            return "conflict"
        text = proc.stdout + proc.stderr
        if "empty" in text or "nothing to commit" in text:
            self.git("cherry-pick", "--skip", check=False)
            return "empty"
        raise SourceError(f"git cherry-pick {commit} failed in {self.path}:\n{text.strip()}")

    def continue_pick(self) -> str:
        """Commit the resolved cherry-pick: "picked", or "empty" if resolved to no change."""
        if self.staged_nothing():
            self.git("cherry-pick", "--skip")
            return "empty"
        self.git("cherry-pick", "--continue")
        return "picked"

    def abort_pick(self) -> None:
        if self.picking():
            self.git("cherry-pick", "--abort", check=False)

    def commits(self, upstream: str) -> list[str]:
        out = self.git("rev-list", "--reverse", f"{upstream}..HEAD").stdout
        return out.split()

    def format_patches(self, upstream: str, outdir: Path, numbering: str) -> list[Path]:
        """`git format-patch` of upstream..HEAD: stable output (no sha, no signature)."""
        outdir.mkdir(parents=True, exist_ok=True)
        flags = {"numbered": ["--numbered"], "plain": ["--no-numbered"],
                 "keep": ["--keep-subject"]}[numbering]
        self.git("format-patch", "--quiet", "--zero-commit", "--no-signature", *flags,
                 "-o", str(outdir), f"{upstream}..HEAD")
        return sorted(outdir.glob("*.patch"))


def numbering_of(patch_texts: Sequence[str]) -> str:
    """How the original patches' subjects were written: [PATCH n/m], [PATCH] or bare."""
    subjects = [m[1] for t in patch_texts if (m := re.search(r"^Subject: (.*)$", t, re.M))]
    if subjects and all(re.match(r"\[PATCH \d+/\d+\]", s) for s in subjects):
        return "numbered"
    if subjects and all(s.startswith("[PATCH") for s in subjects):
        return "plain"
    return "keep" if subjects else "numbered"
