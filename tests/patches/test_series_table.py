"""patches/series.toml and its series: consistent, complete, well-formed (no source needed)."""

from __future__ import annotations

import re

import pytest

from harness import paths
from harness.series.table import Series, TableEntry, available_series, load_series, load_table
from harness.source.versions import Version
from tests.helpers.releases import RELEASES

FORMAT_PATCH_HEAD = re.compile(
    r"\AFrom [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n"
    r"From: .+ <.+@.+>\n"
    r"Date: .+\n"
    r"Subject: \[PATCH (\d+)/(\d+)\] \S.*\n",
)


@pytest.fixture(scope="module")
def table() -> list[TableEntry]:
    entries = load_table()
    assert entries, f"no [[range]] in {paths.PATCHES_DIR / 'series.toml'}"
    return entries


@pytest.fixture(scope="module")
def all_series(table: list[TableEntry]) -> dict[str, Series]:
    return {e.series: load_series(e.series) for e in table}


def test_every_release_covered_exactly_once(table: list[TableEntry]) -> None:
    problems = []
    for version in RELEASES:
        hits = [e.series for e in table if e.covers(version)]
        if len(hits) != 1:
            problems.append(f"{version}: {hits or 'uncovered'}")
    assert not problems, "table coverage: " + "; ".join(problems)


def test_ranges_only_name_real_releases(table: list[TableEntry]) -> None:
    known = set(RELEASES)
    for entry in table:
        assert entry.first in known, f"{entry.series}: first {entry.first} is not a release"
        assert entry.last in known, f"{entry.series}: last {entry.last} is not a release"


def test_next_has_no_series(table: list[TableEntry]) -> None:
    nxt = Version.parse("next")
    assert not [e.series for e in table if e.covers(nxt)]


def test_every_series_directory_is_used(table: list[TableEntry]) -> None:
    used = {e.series for e in table}
    assert set(available_series()) == used


def test_base_release_lies_in_its_range(
    table: list[TableEntry], all_series: dict[str, Series]
) -> None:
    for entry in table:
        base = all_series[entry.series].base
        ranges = [e for e in table if e.series == entry.series]
        assert any(e.covers(base) for e in ranges), f"{entry.series}: base {base} not covered"


def test_series_lists_exactly_its_patch_files(all_series: dict[str, Series]) -> None:
    for series in all_series.values():
        on_disk = sorted(p.name for p in series.directory.glob("*.patch"))
        listed = [p.name for p in series.patches]
        assert listed == on_disk, f"{series.name}: listed {listed} but directory has {on_disk}"
        numbers = [int(name.split("-", 1)[0]) for name in listed]
        assert numbers == list(range(1, len(listed) + 1)), f"{series.name}: numbering {numbers}"


def test_patches_are_format_patch_output(all_series: dict[str, Series]) -> None:
    for series in all_series.values():
        total = len(series.patches)
        for index, patch in enumerate(series.patches, 1):
            text = patch.path.read_text(encoding="utf-8")
            where = f"{series.name}/{patch.name}"
            m = FORMAT_PATCH_HEAD.match(text)
            assert m, f"{where}: no git format-patch header (From/From:/Date:/Subject:)"
            assert (int(m[1]), int(m[2])) == (index, total), f"{where}: [PATCH {m[1]}/{m[2]}]"
            head, sep, diff = text.partition("\n---\n")
            assert sep, f"{where}: no '---' line ending the commit message"
            body = head.split("\n\n", 1)[1] if "\n\n" in head else ""
            assert len(body.strip()) >= 40, f"{where}: commit message body missing"
            assert "\ndiff --git a/" in diff, f"{where}: no diff"
            for line in re.findall(r"^(?:---|\+\+\+) (\S+)", diff, re.MULTILINE):
                assert line == "/dev/null" or line.startswith(("a/", "b/")), f"{where}: not -p1"


def test_series_share_one_design(all_series: dict[str, Series]) -> None:
    """Every series carries the same features, in the same order of patches."""
    features = (
        "passwordfile",
        "any length",
        "SASL helpers",
        "IMAP",
        "POP3",
        "Document",
    )
    for series in all_series.values():
        subjects = [p.subject for p in series.patches]
        for i, word in enumerate(features):
            assert word in subjects[i], f"{series.name}: patch {i + 1} is {subjects[i]!r}"


def test_new_sources_are_built(all_series: dict[str, Series]) -> None:
    for series in all_series.values():
        text = "".join(p.path.read_text(encoding="utf-8") for p in series.patches)
        for source in ("pwfile.c", "oauthsasl.c", "oauthsasl.h"):
            assert f"+++ b/{source}" in text, f"{series.name}: {source} not added"
            assert re.search(rf"^\+fetchmail_SOURCES \+=.*\b{re.escape(source)}", text, re.M), (
                f"{series.name}: {source} not in Makefile.am"
            )


def _new_file(series: Series, path: str) -> str:
    """The content a series gives a file it creates (from the `new file` diff)."""
    for patch in series.patches:
        text = patch.path.read_text(encoding="utf-8")
        m = re.search(
            rf"^diff --git a/{re.escape(path)} b/{re.escape(path)}\nnew file mode .*?\n"
            rf"(?:index .*\n)?--- /dev/null\n\+\+\+ b/{re.escape(path)}\n@@ .*? @@\n"
            r"((?:\+.*\n|\\ No newline.*\n)*)",
            text,
            re.MULTILINE,
        )
        if m:
            return "".join(line[1:] + "\n" for line in m[1].splitlines() if line.startswith("+"))
    raise AssertionError(f"{series.name}: does not create {path}")


def test_new_files_are_identical_in_every_series(all_series: dict[str, Series]) -> None:
    """pwfile.c and oauthsasl.[ch] are version independent: one copy, no drift between series."""
    for path in ("pwfile.c", "oauthsasl.c", "oauthsasl.h"):
        contents = {name: _new_file(s, path) for name, s in all_series.items()}
        reference = contents["oauth64"]
        assert len(reference) > 1000
        differing = sorted(name for name, text in contents.items() if text != reference)
        assert not differing, f"{path} differs from oauth64's in {differing}"
