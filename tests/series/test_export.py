"""`export`: the series as Debian quilt patches, Gentoo user patches, one diff, a git branch —
each checked by the tool a packager uses on a fresh release tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli import main

pytestmark = pytest.mark.fetchmail_source


def _release_tree(upstream: str, tag: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "--git-dir", upstream, "archive", tag],
                             capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "x", "-C", str(dest)], input=archive, check=True)
    return dest


def _patch(tree: Path, patch: Path) -> None:
    run = subprocess.run(["patch", "-p1", "-F0", "--batch", "--forward", "-i", str(patch)],
                         cwd=tree, capture_output=True, text=True)
    assert run.returncode == 0, f"{patch.name}: {run.stdout}{run.stderr}"


def _export(capsys: pytest.CaptureFixture[str], upstream: str, *args: str) -> str:
    capsys.readouterr()
    assert main(["export", *args, "--upstream", upstream]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_quilt_export_is_a_debian_patches_dir_quilt_can_push(
        fetchmail_upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patches = tmp_path / "debian" / "patches"
    patches.mkdir(parents=True)
    (patches / "series").write_text("debian-own.patch\n")  # the package's own patches stay
    (patches / "debian-own.patch").write_text(
        "--- a/NOTES\n+++ b/NOTES\n@@ -0,0 +1 @@\n+packaged\n")
    out = _export(capsys, fetchmail_upstream, "oauth63", str(patches), "--format", "quilt",
                  "--version", "6.3.5", "--with-build-fixes")
    assert "derived for 6.3.5" in out  # a 3way release gets its own fuzz-0 variant
    listed = (patches / "series").read_text().splitlines()
    assert listed[0] == "debian-own.patch" and len(listed) == 1 + 6 + 2
    assert listed[-2:] == ["openssl-1.1_6.3.5-6.3.8.patch", "starttls_6.3.5.patch"]
    # again: nothing listed twice
    _export(capsys, fetchmail_upstream, "oauth63", str(patches), "--format", "quilt",
            "--version", "6.3.5", "--with-build-fixes")
    assert (patches / "series").read_text().splitlines() == listed

    tree = _release_tree(fetchmail_upstream, "RELEASE_6-3-5", tmp_path / "fetchmail-6.3.5")
    shutil.copytree(tmp_path / "debian", tree / "debian")
    if shutil.which("quilt"):
        env = dict(os.environ, QUILT_PATCHES="debian/patches", QUILTRC="/dev/null")
        run = subprocess.run(["quilt", "push", "-a", "--fuzz=0"], cwd=tree, env=env,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Now at patch starttls_6.3.5.patch" in run.stdout
    else:  # quilt is a test peer (`setup --test-peers`); without it, the series order
        for name in listed:
            _patch(tree, patches / name)
    assert "passwordfile" in (tree / "rcfile_l.l").read_text(errors="replace")
    assert (tree / "NOTES").read_text() == "packaged\n"


def test_gentoo_export_goes_where_portage_applies_user_patches(
        fetchmail_upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "etc" / "portage" / "patches"
    _export(capsys, fetchmail_upstream, "oauth64early", str(root), "--format", "gentoo",
            "--version", "6.4.10", "--with-build-fixes")
    directory = root / "net-mail" / "fetchmail-6.4.10"
    names = sorted(p.name for p in directory.iterdir())  # eapply_user's order
    assert len(names) == 8 and names[0].startswith("0001-") and names[-1].startswith("openssl3")
    tree = _release_tree(fetchmail_upstream, "RELEASE_6-4-10", tmp_path / "src")
    for name in names:
        _patch(tree, directory / name)
    assert "yytoknum" not in (tree / "rcfile_y.y").read_text(errors="replace")

    _export(capsys, fetchmail_upstream, "oauth64", str(root), "--format", "gentoo")
    assert len(list((root / "net-mail" / "fetchmail").glob("*.patch"))) == 6  # any version


def test_diff_export_is_one_patch_that_applies_at_fuzz_0(
        fetchmail_upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _export(capsys, fetchmail_upstream, "oauth64", str(tmp_path / "out"), "--format", "diff",
            "--version", "6.4.30")
    diff = tmp_path / "out" / "fetchmail-6.4.30-oauth64.diff"
    assert diff.read_text().startswith("diff --git a/")
    tree = _release_tree(fetchmail_upstream, "RELEASE_6-4-30", tmp_path / "src")
    _patch(tree, diff)
    assert (tree / "oauthsasl.c").is_file() and (tree / "pwfile.c").is_file()


def test_git_export_makes_a_branch_with_git_am(
        fetchmail_upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "fetchmail"
    subprocess.run(["git", "clone", "-q", "--no-checkout", fetchmail_upstream, str(repo)],
                   check=True)
    out = _export(capsys, fetchmail_upstream, "oauth64", str(repo), "--format", "git",
                  "--version", "6.4.33")
    assert "branch oauth2/oauth64-6.4.33" in out
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s",
                          "RELEASE_6-4-33..oauth2/oauth64-6.4.33"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(log) == 6 and log[-1].startswith("Add the passwordfile option")
    status = subprocess.run(["git", "-C", str(repo), "worktree", "list"],
                            capture_output=True, text=True, check=True).stdout
    assert len(status.splitlines()) == 1  # its temporary worktree is gone
    capsys.readouterr()
    assert main(["export", "oauth64", str(repo), "--format", "git", "--version", "6.4.33",
                 "--upstream", fetchmail_upstream]) == 2  # the branch exists: refused
    assert "already has a branch" in capsys.readouterr().err


def test_exporting_a_series_for_a_release_it_does_not_cover_is_refused(
        fetchmail_upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "oauth64", str(tmp_path), "--format", "quilt", "--version", "6.3.5",
                 "--upstream", fetchmail_upstream]) == 2
    assert "6.3.5 takes oauth63, not oauth64" in capsys.readouterr().err
