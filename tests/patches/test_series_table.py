"""patches/series.toml and its series: consistent, complete, well-formed (no source needed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness import paths
from harness.series.buildfixes import load_fixes
from harness.series.derive import parse_span
from harness.series.resolutions import ResolutionStore
from harness.series.table import (
    QUILT_FILE,
    Series,
    TableEntry,
    available_series,
    load_series,
    load_table,
    quilt_series_text,
)
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


def _amended(series: Series, path: str, text: str, tmp: Path) -> str:
    """`text` (the canonical copy of `path`) with the amendments the series records for its
    base release applied: the only way a derived series' new file may differ."""
    amendments = sorted((series.directory / "amendments" / str(series.base)).glob("*.diff"))
    touching = [d for d in amendments if f"diff --git a/{path} " in d.read_text()]
    if not touching:
        return text
    (tmp / path).write_text(text)
    for diff in touching:
        subprocess.run(["git", "apply", f"--include={path}", str(diff)], cwd=tmp, check=True,
                       capture_output=True)
    return (tmp / path).read_text()


def test_new_files_are_identical_in_every_series(all_series: dict[str, Series],
                                                 tmp_path: Path) -> None:
    """pwfile.c and oauthsasl.[ch] are version independent: one copy, no drift between
    series, except a recorded amendment (oauth63: 6.3's to64frombits())."""
    for path in ("pwfile.c", "oauthsasl.c", "oauthsasl.h"):
        contents = {name: _new_file(s, path) for name, s in all_series.items()}
        reference = contents["oauth64"]
        assert len(reference) > 1000
        differing = sorted(name for name, text in contents.items()
                           if text != _amended(all_series[name], path, reference, tmp_path))
        assert not differing, f"{path} differs from oauth64's in {differing}"


def test_a_quilt_series_file_lies_beside_each_series(all_series: dict[str, Series]) -> None:
    for series in all_series.values():
        quilt = series.directory / QUILT_FILE
        assert quilt.is_file(), f"{series.name}: no quilt `series` file (series regenerate)"
        assert quilt.read_text() == quilt_series_text(series), f"{series.name}: stale {quilt}"


def test_one_canonical_series_every_other_derived_from_it(
        all_series: dict[str, Series]) -> None:
    roots = [s.name for s in all_series.values() if s.derived_from is None]
    assert roots == ["oauth64"]
    for series in all_series.values():
        chain = [series.name]
        while all_series[chain[-1]].derived_from is not None:
            chain.append(all_series[chain[-1]].derived_from or "")
            assert len(chain) <= len(all_series), f"derived_from loop: {chain}"
        assert chain[-1] == "oauth64", f"{series.name} derives from {chain}"


def _message(path: Path) -> str:
    """The commit message of a format-patch file (Subject onwards, without [PATCH n/m])."""
    head = path.read_text(encoding="utf-8").partition("\n---\n")[0]
    return re.sub(r"^Subject: \[PATCH[^\]]*\] ", "Subject: ", head[head.index("Subject: "):],
                  flags=re.M)


def test_derived_series_carry_the_canonical_messages(all_series: dict[str, Series]) -> None:
    """Commit messages (and so DEP-3 fields) come from the canonical series, never edited."""
    canonical = {p.name: _message(p.path) for p in all_series["oauth64"].patches}
    for series in all_series.values():
        for patch in series.patches:
            assert _message(patch.path) == canonical[patch.name], f"{series.name}/{patch.name}"


def test_recorded_resolutions_and_amendments_are_well_formed(
        all_series: dict[str, Series]) -> None:
    for series in all_series.values():
        store = ResolutionStore(series.resolutions)  # parses each; the key must match its name
        for record in store.records.values():
            assert record.path != "?" and record.patch in {p.name for p in series.patches}
        for diff in (series.directory / "amendments").rglob("*.diff"):
            parse_span(diff.parent.name)
            assert diff.stem in {Path(p.name).stem for p in series.patches}, diff


def test_build_fixes_table_lists_exactly_its_patch_files() -> None:
    fixes = load_fixes()
    directory = paths.PATCHES_DIR / "build-fixes"
    assert sorted(f.patch.name for f in fixes) == sorted(p.name for p in directory.glob("*.patch"))
    known = set(RELEASES)
    for fix in fixes:
        assert fix.first in known and fix.last in known, fix.patch.name
        text = fix.patch.path.read_text(encoding="utf-8")
        assert re.match(r"From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\nFrom: .+ <.+@.+>\n"
                        r"Date: .+\nSubject: \[PATCH\] \S", text), fix.patch.name


# DEP-3 (https://dep-team.pages.debian.net/deps/dep3/): in a git format-patch mail, Subject and
# From stand for Description and Author; Forwarded and Last-Update are trailers of the body.
DEP3_FIELDS = (("Description", "Subject"), ("Author", "From"), ("Forwarded",), ("Last-Update",))


def _dep3_problems(path: Path) -> list[str]:
    head = path.read_text(encoding="utf-8").partition("\n---\n")[0]
    fields = dict(re.findall(r"^([A-Za-z-]+): *(.*)$", head, re.MULTILINE))
    problems = [names[0] for names in DEP3_FIELDS if not set(names) & set(fields)]
    author = fields.get("Author") or fields.get("From") or ""
    if re.search(r"\.(?:invalid|example|test|local|localhost)>", author) or not re.search(
            r"<[^@>]+@[^>]+>", author):
        problems.append(f"no real contact address ({author!r})")
    if "Last-Update" in fields and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["Last-Update"]):
        problems.append(f"Last-Update {fields['Last-Update']!r} is not YYYY-MM-DD")
    return problems


def test_build_fixes_carry_dep3_fields() -> None:
    bad = {f.patch.name: p for f in load_fixes() if (p := _dep3_problems(f.patch.path))}
    assert not bad, bad


def test_every_series_patch_carries_dep3_fields(all_series: dict[str, Series]) -> None:
    bad = {f"{s.name}/{p.name}": problems for s in all_series.values() for p in s.patches
           if (problems := _dep3_problems(p.path))}
    assert not bad, bad
