"""fetchmail sources: a bare git mirror of the upstream and per-version worktrees.

The mirror is made once (clone into a temp dir, then os.replace under a file lock); later runs
work from it without network. `update()` fetches, and only warns if the upstream is unreachable.
"""

from __future__ import annotations

import difflib
import logging
import os
import shutil
from pathlib import Path
from typing import Protocol

import git
from filelock import FileLock

from harness import paths
from harness.atomic import atomic_write
from harness.errors import ConfigError, SourceError
from harness.source.gitmirror import GitMirror, git_reason
from harness.source.versions import Version

log = logging.getLogger(__name__)

DEFAULT_UPSTREAM = "https://gitlab.com/fetchmail/fetchmail.git"
UPSTREAM_ENV = "FETCHMAIL_UPSTREAM"


class Source(Protocol):
    """What a build needs from a source of fetchmail trees."""

    def resolve(self, name: str) -> Version: ...

    def commit(self, version: Version) -> str: ...

    def worktree(self, version: Version) -> Path: ...


def source_dir(cache: Path) -> Path:
    path = cache / "source"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _remembered_file(cache: Path) -> Path:
    return source_dir(cache) / "upstream"


def remember_upstream(url: str, cache: Path | None = None) -> None:
    """Make `url` the upstream of later runs that name none (what `sources --upstream` does)."""
    atomic_write(_remembered_file(cache or paths.cache_dir()), url + "\n")


def configured_upstream(explicit: str | None = None, cache: Path | None = None) -> str:
    """Explicit argument, else $FETCHMAIL_UPSTREAM, else the remembered one, else GitLab."""
    if explicit:
        return explicit
    env = os.environ.get(UPSTREAM_ENV)
    if env:
        return env
    remembered = _remembered_file(cache or paths.cache_dir())
    if remembered.is_file() and remembered.read_text().strip():
        return remembered.read_text().strip()
    return DEFAULT_UPSTREAM


def release_versions(tags: list[str], branches: list[str]) -> list[Version]:
    """fetchmail 6.x releases/pre-releases named by `tags`, plus `next` if it is a branch."""
    found = {v for t in tags if (v := Version.from_tag(t)) is not None and v.major == 6}
    if "next" in branches:
        found.add(Version.parse("next"))
    return sorted(found)


class FetchmailSource:
    """fetchmail's git history: a bare mirror in the cache, and one worktree per version."""

    def __init__(self, upstream: str | None = None, cache: Path | None = None) -> None:
        self.cache = cache or paths.cache_dir()
        self.upstream = configured_upstream(upstream, self.cache)
        self.mirror = paths.mirror_dir(self.cache)
        self._git = GitMirror(
            self.upstream, self.mirror, what="fetchmail",
            hint="Point at a reachable copy: `fetchmail-harness sources --upstream URL_OR_PATH` "
                 f"or set {UPSTREAM_ENV}.",
        )

    def ensure_mirror(self) -> git.Repo:
        """The mirror, cloned first if missing; a corrupt one is set aside and re-cloned."""
        return self._git.repo()

    def update(self) -> bool:
        """Fetch new tags/branches. False (with a warning) if the upstream is unreachable."""
        return self._git.update()

    # -- versions -----------------------------------------------------------------------------

    def versions(self) -> list[Version]:
        """fetchmail 6.x releases and pre-releases (from tags) plus `next`, oldest first."""
        repo = self.ensure_mirror()
        return release_versions([t.name for t in repo.tags], [h.name for h in repo.heads])

    def resolve(self, name: str) -> Version:
        """The version called `name` (6.4.33, RELEASE_6-4-33, next); ConfigError if unknown."""
        known = self.versions()
        try:
            wanted = Version.parse(name)
        except ConfigError:
            wanted = None
        if wanted is not None and wanted in known:
            return wanted
        close = difflib.get_close_matches(name, [str(v) for v in known], n=4, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown fetchmail version {name!r}.{hint} "
            "(`fetchmail-harness versions` lists them; `fetchmail-harness sources` refreshes)"
        )

    def commit(self, version: Version) -> str:
        repo = self.ensure_mirror()
        try:
            return str(repo.git.rev_parse(f"{version.tag}^{{commit}}"))
        except git.GitCommandError as exc:
            raise ConfigError(f"fetchmail {version} ({version.tag}) is not in the mirror") from exc

    # -- worktrees ----------------------------------------------------------------------------

    def worktree(self, version: Version) -> Path:
        """A pristine checkout of `version`, made once and reused while it stays clean."""
        repo = self.ensure_mirror()
        commit = self.commit(version)
        path = source_dir(self.cache) / "trees" / f"{version}-{commit[:12]}"
        with FileLock(str(path) + ".lock"):
            if path.exists():
                if _clean_checkout(path, commit):
                    return path
                log.warning("worktree %s was modified or broken; recreating it", path)
                shutil.rmtree(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._git.lock:
                repo.git.worktree("prune")
                try:
                    repo.git.worktree("add", "--detach", "--force", str(path), commit)
                except git.GitCommandError as exc:
                    shutil.rmtree(path, ignore_errors=True)
                    raise SourceError(
                        f"cannot check out fetchmail {version}: {git_reason(exc)}"
                    ) from exc
        return path


def _clean_checkout(path: Path, commit: str) -> bool:
    try:
        tree = git.Repo(path)
        return tree.head.commit.hexsha == commit and not tree.is_dirty(untracked_files=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return False
