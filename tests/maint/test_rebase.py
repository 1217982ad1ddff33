"""`rebase` on real fetchmail history: throwaway series made against 6.4.0, carried to 6.4.22."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from harness.maint.rebase import parse_targets
from harness.source.mirror import FetchmailSource
from harness.source.versions import Version
from tests.helpers.workshop import (
    DEFINE_OAUTH,
    ENVELOPE_COMMENT,
    IMAP_HOOK,
    PASSWORDFILE_FIELD,
    Cli,
    Commit,
    Workshop,
    git,
    tag_of,
)

pytestmark = pytest.mark.fetchmail_source


def table(patches: Path) -> list[dict[str, object]]:
    with (patches / "series.toml").open("rb") as f:
        ranges: list[dict[str, object]] = tomllib.load(f)["range"]
    return ranges


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def am_applies(workshop: Workshop, series_dir: Path, version: str) -> str:
    """Apply a series with `git am` to a fresh checkout of `version`; the resulting diff."""
    tree = workshop.checkout(version)
    listed = tomllib.loads((series_dir / "series.toml").read_text())["patches"]
    for name in listed:
        git(tree, "am", "-q", str(series_dir / name))
    return git(tree, "diff", tag_of(version), "HEAD")


def test_series_that_still_applies_only_widens_the_range(workshop: Workshop, cli: Cli) -> None:
    workshop.make_series("demo", "6.4.0", [DEFINE_OAUTH, IMAP_HOOK])
    workshop.table(("demo", "6.4.0", "6.4.0", 0))
    (workshop.patches_dir / "series.toml").write_text(
        (workshop.patches_dir / "series.toml").read_text().replace(
            'series = "demo"', 'series = "demo"  # keep me'))
    before = snapshot(workshop.patches_dir / "demo")

    out = cli("rebase", "--onto", "6.4.22", "--no-test", "--patches-dir",
              str(workshop.patches_dir))

    assert out.returncode == 0, out.stderr
    assert "offset" in out.stdout  # imap.c moved down by 6.4.22, the patch still fits
    assert "widened demo 6.4.0 to 6.4.0..6.4.22" in out.stdout
    assert table(workshop.patches_dir) == [
        {"series": "demo", "first": "6.4.0", "last": "6.4.22", "max_fuzz": 0}]
    assert "# keep me" in (workshop.patches_dir / "series.toml").read_text()
    assert snapshot(workshop.patches_dir / "demo") == before  # no new series, old untouched
    assert sorted(p.name for p in workshop.patches_dir.iterdir()) == ["demo", "series.toml"]


def test_moved_context_is_merged_and_the_series_regenerated(
        workshop: Workshop, cli: Cli, cli_subprocess: Cli, isolated_cache: Path) -> None:
    old = workshop.make_series("demo", "6.4.0", [DEFINE_OAUTH, IMAP_HOOK, PASSWORDFILE_FIELD])
    workshop.table(("demo", "6.4.0", "6.4.0", 0))

    out = cli_subprocess("rebase", "--onto", "RELEASE_6-4-22", "--no-test", "--patches-dir",
              str(workshop.patches_dir))

    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    status: dict[str, str] = {}
    for ln in lines:
        for name in (p.name for p in old.glob("*.patch")):
            if name in ln and ln.startswith("  "):
                status.setdefault(name, ln)
    assert status["0001-Add-the-oauthbearer-authentication-mode.patch"].split()[0] == "clean"
    assert "offset" in status["0002-imap-try-OAUTHBEARER-before-challenge-response.patch"]
    assert "merged automatically" in status[
        "0003-Add-a-passwordfile-field-to-struct-hostdata.patch"]

    new = workshop.patches_dir / "demo_6.4.22"
    meta = tomllib.loads((new / "series.toml").read_text())
    assert meta["base"] == "6.4.22" and meta["name"] == "demo_6.4.22"
    assert meta["patches"] == sorted(p.name for p in old.glob("*.patch"))
    # same messages, fresh line numbers
    for name in meta["patches"]:
        old_text, new_text = (old / name).read_text(), (new / name).read_text()
        assert old_text.split("\n---\n")[0].split("Subject:")[1] == \
            new_text.split("\n---\n")[0].split("Subject:")[1]
    assert "@@ -569,6 +569,8 @@" in (old / meta["patches"][1]).read_text()
    assert "@@ -640,6 +640,8 @@" in (new / meta["patches"][1]).read_text()
    assert "@@ -269,6 +269,7 @@" in (old / meta["patches"][2]).read_text()
    assert "@@ -271,6 +271,7 @@" in (new / meta["patches"][2]).read_text()
    # it applies to 6.4.22 in a clone of its own, and makes the same change as the old one did
    diff = am_applies(workshop, new, "6.4.22")
    assert "+    char *passwordfile;" in diff and "+#define\t\tA_OAUTHBEARER" in diff
    assert table(workshop.patches_dir) == [
        {"series": "demo", "first": "6.4.0", "last": "6.4.0", "max_fuzz": 0},
        {"series": "demo_6.4.22", "first": "6.4.22", "last": "6.4.22", "max_fuzz": 0}]
    state_dir = isolated_cache / "rebase" / "demo_6.4.22"
    assert not (state_dir / "state.json").exists()

    # the regeneration only refreshed context: `diff` says so
    same = cli("diff", "demo", "demo_6.4.22", "--patches-dir", str(workshop.patches_dir))
    assert same.returncode == 0, same.stdout
    assert "totals: 3 identical, 0 changed, 0 only in A, 0 only in B" in same.stdout
    assert same.stdout.count("identical (context/line numbers refreshed)") == 2  # 0002, 0003

    # a later release the new series fits only widens its range
    wider = cli("rebase", "--onto", "6.4.23", "--no-test", "--patches-dir",
                str(workshop.patches_dir))
    assert wider.returncode == 0, wider.stderr
    assert "rebase: demo_6.4.22 (base 6.4.22)" in wider.stdout  # the closest series
    assert table(workshop.patches_dir)[1] == {
        "series": "demo_6.4.22", "first": "6.4.22", "last": "6.4.23", "max_fuzz": 0}


def start_conflict(workshop: Workshop, cli: Cli) -> subprocess.CompletedProcess[str]:
    workshop.make_series("demo", "6.4.0", [DEFINE_OAUTH, ENVELOPE_COMMENT, PASSWORDFILE_FIELD])
    workshop.table(("demo", "6.4.0", "6.4.0", 0))
    return cli("rebase", "--onto", "6.4.22", "--name", "demo64", "--no-test",
               "--patches-dir", str(workshop.patches_dir))


def test_conflict_stops_and_continue_finishes_after_resolution(
        workshop: Workshop, cli: Cli, isolated_cache: Path) -> None:
    out = start_conflict(workshop, cli)

    assert out.returncode == 4, out.stderr  # PatchError
    assert "CONFLICTED" in out.stdout and "0002-Document-that" in out.stdout
    err = out.stderr
    assert "fetchmail.h (both modified)" in err
    assert "<<<<<<<" in err and ">>>>>>>" in err and "||||||| " in err
    assert "STRING_DISABLED" in err  # upstream's side of the conflicting line
    assert "rebase --continue --name demo64" in err
    directory = isolated_cache / "rebase" / "demo64"
    state = json.loads((directory / "state.json").read_text())
    assert state["current"] == "0002-Document-that-the-envelope-header-can-be-disabled.patch"
    assert state["remaining"] == ["0003-Add-a-passwordfile-field-to-struct-hostdata.patch"]
    assert not (workshop.patches_dir / "demo64").exists()

    # not resolved yet
    early = cli("rebase", "--continue")
    assert early.returncode == 4 and "not resolved yet" in early.stderr

    src = directory / "src"
    header = src / "fetchmail.h"
    text = header.read_text(errors="surrogateescape")
    start = text.index("<<<<<<<")
    end = text.index("\n", text.index(">>>>>>>")) + 1
    resolved = ("    char *envelope;\t\t\t/* envelope address list header - WARNING - can take "
                "value STRING_DISABLED (-1)! or disabled */\n")
    header.write_text(text[:start] + resolved + text[end:], errors="surrogateescape")

    # resolved in the file but not `git add`ed
    unstaged = cli("rebase", "--continue", "--name", "demo64")
    assert unstaged.returncode == 4 and "not `git add`ed" in unstaged.stderr

    git(src, "add", "fetchmail.h")
    (src / "imap.c").write_text((src / "imap.c").read_text(errors="surrogateescape") + "\n",
                                errors="surrogateescape")
    dirty = cli("rebase", "--continue")
    assert dirty.returncode == 2, dirty.stderr  # ConfigError: a stray unstaged change
    assert "not staged: imap.c" in dirty.stderr
    git(src, "checkout", "--", "imap.c")

    done = cli("rebase", "--continue")
    assert done.returncode == 0, done.stderr
    assert "resolved by hand" in done.stdout and "merged automatically" in done.stdout
    new = workshop.patches_dir / "demo64"
    patch2 = (new / "0002-Document-that-the-envelope-header-can-be-disabled.patch").read_text()
    assert "+    char *envelope;\t\t\t/* envelope address list header - WARNING" in patch2
    assert "(-1)! or disabled */" in patch2
    diff = am_applies(workshop, new, "6.4.22")
    assert "passwordfile" in diff and "or disabled" in diff
    assert {"series": "demo64", "first": "6.4.22", "last": "6.4.22", "max_fuzz": 0} in \
        table(workshop.patches_dir)
    assert not (directory / "state.json").exists()

    # what regeneration changed, for a reviewer
    review = cli("diff", "demo", "demo64", "--patches-dir", str(workshop.patches_dir))
    assert review.returncode == 1
    assert re.search(r"0002-Document-that-the-envelope-header-can-be-disabled.patch +changed: "
                     r"fetchmail.h \(\+2 -2\)", review.stdout)
    assert "totals: 2 identical, 1 changed" in review.stdout
    assert "-+    char *envelope;\t\t\t/* envelope address list header, or disabled */" in \
        review.stdout
    assert "++    char *envelope;" in review.stdout


def test_abort_removes_the_worktree_and_writes_nothing(
        workshop: Workshop, cli: Cli, isolated_cache: Path) -> None:
    out = start_conflict(workshop, cli)
    assert out.returncode == 4
    before = snapshot(workshop.patches_dir)

    aborted = cli("rebase", "--abort", "--name", "demo64")

    assert aborted.returncode == 0, aborted.stderr
    assert not (isolated_cache / "rebase" / "demo64").exists()
    assert snapshot(workshop.patches_dir) == before
    again = cli("rebase", "--continue")
    assert again.returncode == 2 and "no rebase in progress" in again.stderr


def test_a_second_start_of_a_rebase_in_progress_is_refused(
        workshop: Workshop, cli: Cli) -> None:
    assert start_conflict(workshop, cli).returncode == 4
    again = cli("rebase", "--onto", "6.4.22", "--from", "demo", "--name", "demo64",
                "--no-test", "--patches-dir", str(workshop.patches_dir))
    assert again.returncode == 2
    assert "already in progress" in again.stderr and "--abort --name demo64" in again.stderr


def test_dirty_maintainer_worktree_blocks_a_new_rebase(
        workshop: Workshop, cli: Cli, isolated_cache: Path, tmp_path: Path) -> None:
    workshop.make_series("demo", "6.4.0", [PASSWORDFILE_FIELD])
    workshop.table(("demo", "6.4.0", "6.4.0", 0))
    first = cli("rebase", "--onto", "6.4.22", "--name", "fresh", "--no-test",
                "--patches-dir", str(workshop.patches_dir))
    assert first.returncode == 0, first.stderr
    src = isolated_cache / "rebase" / "fresh" / "src"
    (src / "NEWS").write_text("local edit\n")
    other = tmp_path / "other-patches"
    other.mkdir()
    (other / "demo").symlink_to(workshop.patches_dir / "demo")

    out = cli("rebase", "--onto", "6.4.22", "--from", "demo", "--name", "fresh", "--no-test",
              "--patches-dir", str(other))

    assert out.returncode == 2, out.stderr
    assert "uncommitted changes" in out.stderr and "NEWS" in out.stderr
    assert (src / "NEWS").read_text() == "local edit\n"  # nothing lost
    assert not (other / "fresh").exists()


def test_missing_tag_is_a_clear_error(workshop: Workshop, cli: Cli) -> None:
    workshop.make_series("demo", "6.4.0", [PASSWORDFILE_FIELD])
    before = snapshot(workshop.patches_dir)
    out = cli("rebase", "--onto", "6.4.99", "--no-test", "--patches-dir",
              str(workshop.patches_dir))
    assert out.returncode == 2
    assert "unknown fetchmail version '6.4.99'" in out.stderr
    assert snapshot(workshop.patches_dir) == before
    native = cli("rebase", "--onto", "next", "--no-test", "--patches-dir",
                 str(workshop.patches_dir))
    assert native.returncode == 2 and "native OAuth" in native.stderr


def test_unknown_series_is_a_clear_error(workshop: Workshop, cli: Cli) -> None:
    workshop.make_series("demo", "6.4.0", [PASSWORDFILE_FIELD])
    out = cli("rebase", "--onto", "6.4.22", "--from", "nosuch", "--no-test", "--patches-dir",
              str(workshop.patches_dir))
    assert out.returncode == 2
    assert "unknown patch series 'nosuch'" in out.stderr and "known: demo" in out.stderr


def test_series_that_does_not_apply_to_its_own_base_is_refused(
        workshop: Workshop, cli: Cli, isolated_cache: Path) -> None:
    workshop.make_series("demo", "6.4.22", [Commit(
        "Touch the 6.4.22 envelope line",
        [("fetchmail.h", "STRING_DISABLED (-1)! */", "STRING_DISABLED (-1)! (touched) */")])])
    meta = workshop.patches_dir / "demo" / "series.toml"
    meta.write_text(meta.read_text().replace('base = "6.4.22"', 'base = "6.4.0"'))
    out = cli("rebase", "--onto", "6.4.23", "--regenerate", "--no-test", "--patches-dir",
              str(workshop.patches_dir))
    assert out.returncode == 4
    assert "does not apply with `git am` to its own base 6.4.0" in out.stderr
    assert not (isolated_cache / "rebase" / "demo_6.4.23").exists()


def test_default_names_fit_matrix_cell_identifiers() -> None:
    from harness.cell.model import Cell
    from harness.maint.rebase import default_name
    from harness.source.versions import Version

    names = [default_name("oauth63-17", Version.parse("6.3.18")),
             default_name("oauth64early_6.4.22", Version.parse("6.4.24")),
             default_name("oauth64", Version.parse("6.5.0.beta7"))]
    assert names == ["oauth63_17_6.3.18", "oauth64early_6.4.24", "oauth64_6.5.0.beta7"]
    for name in names:
        cell = Cell.parse(f"6.4.24-{name}-bookworm-imap-xoauth2-tls")
        assert cell.series == name


def test_a_range_is_carried_release_after_release(workshop: Workshop, cli: Cli) -> None:
    """`--onto FIRST..LAST`: each release starts from the series the one before it ended on."""
    workshop.make_series("demo", "6.4.0", [DEFINE_OAUTH, IMAP_HOOK, PASSWORDFILE_FIELD])
    workshop.table(("demo", "6.4.0", "6.4.0", 0))

    out = cli("rebase", "--onto", "6.4.20..6.4.23", "--no-test", "--patches-dir",
              str(workshop.patches_dir))

    assert out.returncode == 0, out.stdout + out.stderr
    mapped = {v: next(r["series"] for r in table(workshop.patches_dir)
                      if _covers(r, v)) for v in ("6.4.20", "6.4.21", "6.4.22", "6.4.23")}
    # fits up to 6.4.21; 6.4.22 needs the three-way merge; 6.4.23 widens the new series
    assert mapped == {"6.4.20": "demo", "6.4.21": "demo", "6.4.22": "demo_6.4.22",
                      "6.4.23": "demo_6.4.22"}
    assert "carried 4 release(s):" in out.stdout
    for version, series in mapped.items():
        assert f"  {version} -> {series}" in out.stdout
        assert "passwordfile" in am_applies(workshop, workshop.patches_dir / series, version)

    table_after = table(workshop.patches_dir)
    again = cli("rebase", "--onto", "6.4.20..6.4.23", "--no-test", "--patches-dir",
                str(workshop.patches_dir))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("which applies; skipped") == 4
    assert table(workshop.patches_dir) == table_after


def test_a_range_stops_at_a_conflict_and_says_how_to_go_on(
        workshop: Workshop, cli: Cli) -> None:
    workshop.make_series("demo", "6.4.0", [DEFINE_OAUTH, ENVELOPE_COMMENT])
    workshop.table(("demo", "6.4.0", "6.4.0", 0))
    out = cli("rebase", "--onto", "6.4.21..6.4.23", "--no-test", "--patches-dir",
              str(workshop.patches_dir))
    assert out.returncode == 4, out.stdout + out.stderr
    assert "stopped at 6.4.22; done before it: 6.4.21 -> demo" in out.stdout
    assert "rebase --onto 6.4.22..6.4.23" in out.stdout
    assert "rebase --continue --name demo_6.4.22" in out.stderr
    assert not any(_covers(r, "6.4.23") for r in table(workshop.patches_dir))


@pytest.mark.parametrize(("onto", "needle"), [
    ("6.4.23..6.4.21", "6.4.21 comes before 6.4.23"),
    ("..6.4.21", "use FIRST..LAST"),
    ("6.4.21..next", "native OAuth"),
    ("6.4.21..6.4.99", "unknown fetchmail version '6.4.99'"),
])
def test_bad_ranges_are_clear_errors(workshop: Workshop, cli: Cli, onto: str,
                                     needle: str) -> None:
    workshop.make_series("demo", "6.4.0", [DEFINE_OAUTH])
    workshop.table(("demo", "6.4.0", "6.4.0", 0))
    out = cli("rebase", "--onto", onto, "--no-test", "--patches-dir", str(workshop.patches_dir))
    assert out.returncode == 2 and needle in out.stderr, out.stderr
    named = cli("rebase", "--onto", "6.4.1..6.4.2", "--name", "x", "--patches-dir",
                str(workshop.patches_dir))
    assert named.returncode == 2 and "not with a range" in named.stderr


def _covers(row: dict[str, object], version: str) -> bool:
    first, last = Version.parse(str(row["first"])), Version.parse(str(row["last"]))
    return first <= Version.parse(version) <= last


def _resolve_envelope(src: Path) -> None:
    header = src / "fetchmail.h"
    text = header.read_text(errors="surrogateescape")
    start = text.index("<<<<<<<")
    end = text.index("\n", text.index(">>>>>>>")) + 1
    resolved = "    char *envelope;\t\t\t/* envelope address list header, or disabled (-1) */\n"
    header.write_text(text[:start] + resolved + text[end:], errors="surrogateescape")


def test_a_resolution_committed_by_hand_is_taken(
        workshop: Workshop, cli: Cli, isolated_cache: Path) -> None:
    assert start_conflict(workshop, cli).returncode == 4
    src = isolated_cache / "rebase" / "demo64" / "src"
    _resolve_envelope(src)
    git(src, "add", "fetchmail.h")
    git(src, "-c", "core.editor=true", "cherry-pick", "--continue")  # the maintainer's own commit

    done = cli("rebase", "--continue")
    assert done.returncode == 0, done.stderr
    assert "committed by hand" in done.stdout
    patch2 = workshop.patches_dir / "demo64" / \
        "0002-Document-that-the-envelope-header-can-be-disabled.patch"
    assert "or disabled (-1) */" in patch2.read_text()
    assert "passwordfile" in am_applies(workshop, workshop.patches_dir / "demo64", "6.4.22")


def test_a_cherry_pick_aborted_by_hand_is_named(
        workshop: Workshop, cli: Cli, isolated_cache: Path) -> None:
    assert start_conflict(workshop, cli).returncode == 4
    src = isolated_cache / "rebase" / "demo64" / "src"
    git(src, "cherry-pick", "--abort")
    out = cli("rebase", "--continue")
    assert out.returncode == 4
    assert "no longer in progress and nothing was committed" in out.stderr
    assert not (workshop.patches_dir / "demo64").exists()


def test_an_open_range_runs_to_the_newest_release_pre_releases_included(
        fetchmail_upstream: str) -> None:
    source = FetchmailSource(fetchmail_upstream)
    assert [str(v) for v in parse_targets("6.4.32..", source)] == \
        ["6.4.32", "6.4.33", "6.5.0.beta7"]
    assert [str(v) for v in parse_targets("RELEASE_6-3-25..6.4.0", source)] == \
        ["6.3.25", "6.3.26", "6.4.0"]
    assert [str(v) for v in parse_targets("6.4.1", source)] == ["6.4.1"]
    # superseded betas only as named ends
    assert [str(v) for v in parse_targets("6.5.0.beta3..6.5.0.beta7", source)] == \
        ["6.5.0.beta3", "6.5.0.beta7"]
