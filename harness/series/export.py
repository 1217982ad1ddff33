"""Hand a series to a packager: Debian quilt, Gentoo user patches, one diff, or a git branch.

What is exported is what the harness applies to that release: the stored patches of a
`fuzz0` range, or the variant derived for the release in a `3way` range (fuzz 0 there too),
optionally followed by the build fixes the release needs.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, PatchError
from harness.series.buildfixes import fixes_for
from harness.series.table import THREE_WAY, Patch, entry_for, load_series
from harness.source.mirror import FetchmailSource
from harness.source.versions import Version
from harness.source.worktree import MaintainerTree

FORMATS = ("quilt", "gentoo", "diff", "git")
GENTOO_PACKAGE = "net-mail/fetchmail"


@dataclass(frozen=True)
class Export:
    series: str
    version: Version
    patches: tuple[Patch, ...]  # in order: the series, then build fixes if asked for
    how: str


def collect(series_name: str, version: Version | None, build_fixes: bool,
            source: FetchmailSource, patches_dir: Path | None) -> Export:
    series = load_series(series_name, patches_dir)
    target = version or series.base
    entry = entry_for(target, patches_dir)
    if entry is None or entry.series != series.name:
        takes = f"takes {entry.series}" if entry else "has no series"
        raise ConfigError(f"fetchmail {target} {takes}, not {series.name} (see `versions`); "
                          f"export {entry.series if entry else 'nothing'} for it")
    how = "stored patches, fuzz 0"
    patches = series.patches
    if entry.apply == THREE_WAY:
        from harness.series.derive import variant

        derived, carried = variant(source, series, target)
        patches, how = derived.patches, f"derived for {target} ({carried.how}), fuzz 0"
    fixes = tuple(f.patch for f in fixes_for(target, True, patches_dir)) if build_fixes else ()
    return Export(series.name, target, patches + fixes, how)


def _copy_patches(export: Export, dest: Path) -> list[str]:
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for patch in export.patches:
        target = dest / patch.name
        if target.exists() and target.read_bytes() != patch.path.read_bytes():
            raise ConfigError(f"{target} exists with other content; not overwriting it")
        shutil.copyfile(patch.path, target)
        names.append(patch.name)
    return names


def to_quilt(export: Export, dest: Path) -> Path:
    """Debian's debian/patches layout: the patches and a `series` file (entries appended to
    an existing one, so the package's own patches stay)."""
    names = _copy_patches(export, dest)
    series = dest / "series"
    listed = series.read_text().splitlines() if series.is_file() else []
    known = {line.split()[0] for line in listed if line.strip() and not line.startswith("#")}
    missing = [n for n in names if n not in known]
    with series.open("a") as f:
        f.writelines(f"{n}\n" for n in missing)
    return series


def to_gentoo(export: Export, root: Path, any_version: bool) -> Path:
    """/etc/portage/patches/net-mail/fetchmail[-VERSION]/: applied by eapply_user in
    lexical order, which is the series' order (build fixes, named by word, come last)."""
    name = "fetchmail" if any_version else f"fetchmail-{export.version}"
    dest = root / GENTOO_PACKAGE.split("/")[0] / name
    _copy_patches(export, dest)
    order = sorted(p.name for p in export.patches)
    if order != [p.name for p in export.patches]:
        raise PatchError(f"the patch names do not sort in series order: {order}")
    return dest


def _patched_tree(export: Export, source: FetchmailSource, where: Path) -> MaintainerTree:
    """A clone at the release with every patch as a commit (`git am`)."""
    tree = MaintainerTree.clone(Path(source.ensure_mirror().git_dir), where)
    tree.checkout_branch("export", source.commit(export.version))
    for patch in export.patches:
        proc = tree.am(patch.path)
        if proc.returncode != 0:
            raise PatchError(f"{patch.name} does not apply to {export.version} with `git am`:"
                             f"\n{(proc.stdout + proc.stderr).strip()}")
    return tree


def to_diff(export: Export, source: FetchmailSource, dest: Path) -> Path:
    """One combined -p1 diff against the release."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"fetchmail-{export.version}-{export.series}.diff"
    with tempfile.TemporaryDirectory(prefix="fmh-export-") as tmp:
        tree = _patched_tree(export, source, Path(tmp) / "src")
        diff = tree.git("diff", "--no-color", "--binary", source.commit(export.version),
                        "HEAD").stdout
    out.write_text(diff)
    return out


def to_git(export: Export, source: FetchmailSource, repo: Path, branch: str | None) -> str:
    """A branch in `repo` (a fetchmail clone that has the release): the release plus one
    commit per patch, made with `git am` in a temporary worktree (the checkout is left
    alone)."""
    name = branch or f"oauth2/{export.series}-{export.version}"
    commit = source.commit(export.version)
    user = MaintainerTree(repo)
    if user.git("rev-parse", "--git-dir", check=False).returncode != 0:
        raise ConfigError(f"{repo} is not a git repository")
    if user.git("cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode != 0:
        raise ConfigError(f"{repo} does not have fetchmail {export.version} (commit "
                          f"{commit[:12]}): fetch it there first")
    if user.git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}",
                check=False).returncode == 0:
        raise ConfigError(f"{repo} already has a branch {name}; name another with --branch")
    with tempfile.TemporaryDirectory(prefix="fmh-export-") as tmp:
        work = Path(tmp) / "wt"
        user.git("worktree", "add", "--quiet", "--detach", str(work), commit)
        try:
            tree = MaintainerTree(work)
            for patch in export.patches:
                proc = tree.am(patch.path)
                if proc.returncode != 0:
                    raise PatchError(f"{patch.name}: `git am` failed in {repo}:\n"
                                     f"{(proc.stdout + proc.stderr).strip()}")
            user.git("branch", name, tree.head())
        finally:
            user.git("worktree", "remove", "--force", str(work), check=False)
    return name


def run_export(series: str, fmt: str, dest: Path, *, version: Version | None = None,
               build_fixes: bool = False, branch: str | None = None,
               patches_dir: Path | None = None, upstream: str | None = None) -> str:
    """Export and say what was written."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    source = FetchmailSource(upstream)
    export = collect(series, version, build_fixes, source, patches_dir)
    head = (f"{export.series} for fetchmail {export.version} ({export.how}): "
            f"{len(export.patches)} patch(es)")
    if fmt == "quilt":
        where = f"{dest}/ (quilt series file {to_quilt(export, dest)})"
    elif fmt == "gentoo":
        where = f"{to_gentoo(export, dest, any_version=version is None)}/"
    elif fmt == "diff":
        where = str(to_diff(export, source, dest))
    else:
        where = f"branch {to_git(export, source, dest, branch)} in {dest}"
    return f"{head} -> {where}"
