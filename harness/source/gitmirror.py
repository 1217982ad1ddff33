"""A bare git mirror of an upstream in the cache: cloned once, reused offline, fetched on demand.

The clone goes into a temp dir next to the mirror and is moved into place under a file lock,
so a killed clone never leaves a half mirror; a corrupt mirror is set aside and re-cloned.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import git
from filelock import FileLock

from harness.errors import SourceError

log = logging.getLogger(__name__)

# Keep a dead network (or a password prompt) from hanging a clone/fetch forever.
GIT_NET_ENV = {
    "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
    "GIT_HTTP_LOW_SPEED_TIME": "30",
    "GIT_TERMINAL_PROMPT": "0",
}


class GitMirror:
    """`what` names the project in messages; `hint` says how to point at another upstream."""

    def __init__(self, upstream: str, path: Path, *, what: str, hint: str) -> None:
        self.upstream = upstream
        self.path = path
        self.what = what
        self.hint = hint
        self.lock = FileLock(str(path) + ".lock")
        self._repo: git.Repo | None = None

    def _open(self) -> git.Repo | None:
        """The existing mirror, None if there is none; a corrupt one is reported as None too."""
        if not self.path.exists():
            return None
        try:
            repo = git.Repo(self.path)
            repo.git.rev_parse("--git-dir")
            if not repo.bare:
                raise git.InvalidGitRepositoryError(str(self.path))
            return repo
        except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
            return None

    def _clone(self) -> None:
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".clone-", dir=parent))
        log.info("mirroring %s from %s into %s", self.what, self.upstream, self.path)
        try:
            git.Repo.clone_from(self.upstream, tmp / "repo", mirror=True, env=GIT_NET_ENV)
        except git.GitCommandError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SourceError(
                f"cannot mirror {self.what} from {self.upstream}: {git_reason(exc)}\n{self.hint}"
            ) from exc
        if self.path.exists():  # a corrupt one, checked under the lock
            shutil.rmtree(self.path)
        tmp.joinpath("repo").replace(self.path)
        shutil.rmtree(tmp, ignore_errors=True)

    def repo(self) -> git.Repo:
        """The mirror, cloned first if missing; a corrupt one is set aside and re-cloned."""
        if self._repo is not None:
            return self._repo
        with self.lock:
            repo = self._open()
            if repo is None:
                if self.path.exists():
                    log.warning("%s is not a usable git mirror; re-cloning it", self.path)
                    try:
                        self._clone()
                    except SourceError as exc:
                        raise SourceError(
                            f"the source cache {self.path} is corrupt (not a bare git "
                            f"repository) and could not be re-cloned.\n{exc}\n"
                            f"Or remove it by hand: rm -rf {self.path}"
                        ) from exc
                else:
                    self._clone()
                repo = self._open()
                if repo is None:
                    raise SourceError(f"{self.upstream} did not give a usable git repository")
        self._repo = repo
        return repo

    def update(self) -> bool:
        """Fetch new tags/branches. False (with a warning) if the upstream is unreachable."""
        repo = self.repo()
        with self.lock:
            try:
                repo.git.fetch(
                    "--prune", "--tags", self.upstream, "+refs/heads/*:refs/heads/*",
                    env=GIT_NET_ENV,
                )
            except git.GitCommandError as exc:
                log.warning(
                    "%s upstream %s unreachable (%s); using the mirror as it is",
                    self.what, self.upstream, git_reason(exc),
                )
                return False
        return True


def git_reason(exc: git.GitCommandError) -> str:
    """The line of git's error output that says why (its `fatal:` line if there is one)."""
    text = str(exc.stderr or exc).replace("stderr: '", "\n").strip().strip("'")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
    return fatal[0] if fatal else (lines[-1] if lines else text)
