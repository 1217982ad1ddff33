"""Editing patches/series.toml as text: ranges widened, carved, added; comments kept."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.series.table import load_table
from harness.series.table_edit import Range, TableDoc, map_release, series_file_text
from harness.source.versions import Version

V = Version.parse
RELEASES = [V(f"6.4.{n}") for n in range(34)] + [V("6.5.0.beta7")]

TABLE = """\
# The table. Comments stay.

# early 6.4
[[range]]
series = "old"      # first series
first = "6.4.0"
last = "6.4.8"
max_fuzz = 1

# current
[[range]]
series = "cur"
first = "6.4.22"
last = "6.4.27"
max_fuzz = 0
"""


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    for name in ("old", "cur", "new", "x"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "series.toml").write_text(
            series_file_text(name, V("6.4.0"), "d", ["0001-x.patch"]))
        (tmp_path / name / "0001-x.patch").write_text("")
    path = tmp_path / "series.toml"
    path.write_text(TABLE)
    return path


def entries(path: Path) -> list[tuple[str, str, str, int]]:
    return [(e.series, str(e.first), str(e.last), e.max_fuzz) for e in load_table(path.parent)]


def test_widening_keeps_comments_and_layout(table_file: Path) -> None:
    doc = TableDoc(table_file)
    changes = map_release(doc, "cur", V("6.4.33"), 0, RELEASES, lambda v: True)
    doc.save()
    assert changes == ["widened cur 6.4.22..6.4.27 to 6.4.22..6.4.33"]
    assert table_file.read_text() == TABLE.replace('last = "6.4.27"', 'last = "6.4.33"')
    assert entries(table_file)[1] == ("cur", "6.4.22", "6.4.33", 0)


def test_widening_stops_at_a_release_the_series_does_not_fit(table_file: Path) -> None:
    doc = TableDoc(table_file)
    changes = map_release(doc, "cur", V("6.4.33"), 0, RELEASES, lambda v: v != V("6.4.30"))
    doc.save()
    assert changes == ["added range cur 6.4.33 (max_fuzz 0)"]
    assert entries(table_file)[1:] == [("cur", "6.4.22", "6.4.27", 0),
                                       ("cur", "6.4.33", "6.4.33", 0)]


def test_widening_never_jumps_over_another_series(table_file: Path) -> None:
    doc = TableDoc(table_file)
    map_release(doc, "old", V("6.4.30"), 1, RELEASES, lambda v: True)
    doc.save()
    assert entries(table_file) == [("old", "6.4.0", "6.4.8", 1), ("cur", "6.4.22", "6.4.27", 0),
                                   ("old", "6.4.30", "6.4.30", 1)]


def test_new_series_is_inserted_in_version_order(table_file: Path) -> None:
    doc = TableDoc(table_file)
    assert map_release(doc, "new", V("6.4.16"), 0, RELEASES) == [
        "added range new 6.4.16 (max_fuzz 0)"]
    doc.save()
    assert [e[0] for e in entries(table_file)] == ["old", "new", "cur"]
    text = table_file.read_text()
    assert text.index("# early 6.4") < text.index('series = "new"') < text.index("# current")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("6.4.22", [("cur", "6.4.23", "6.4.27", 0), ("new", "6.4.22", "6.4.22", 0)]),
        ("6.4.27", [("cur", "6.4.22", "6.4.26", 0), ("new", "6.4.27", "6.4.27", 0)]),
        ("6.4.25", [("cur", "6.4.22", "6.4.24", 0), ("cur", "6.4.26", "6.4.27", 0),
                    ("new", "6.4.25", "6.4.25", 0)]),
    ],
)
def test_a_release_taken_over_by_a_new_series_is_carved_out(
        table_file: Path, version: str, expected: list[tuple[str, str, str, int]]) -> None:
    doc = TableDoc(table_file)
    changes = map_release(doc, "new", V(version), 0, RELEASES)
    doc.save()
    assert changes[0] == f"took {version} out of range cur 6.4.22..6.4.27"
    got = sorted(e for e in entries(table_file) if e[0] != "old")
    assert got == sorted(expected)


def test_a_one_release_range_is_removed_when_taken_over(table_file: Path) -> None:
    table_file.write_text(TABLE.replace('first = "6.4.22"', 'first = "6.4.27"'))
    doc = TableDoc(table_file)
    changes = map_release(doc, "new", V("6.4.27"), 0, RELEASES)
    doc.save()
    assert changes[0].startswith("removed range cur 6.4.27")
    assert entries(table_file) == [("old", "6.4.0", "6.4.8", 1), ("new", "6.4.27", "6.4.27", 0)]
    assert "# current" not in table_file.read_text()
    assert "# early 6.4" in table_file.read_text()


def test_already_mapped_changes_nothing(table_file: Path) -> None:
    doc = TableDoc(table_file)
    assert map_release(doc, "cur", V("6.4.25"), 0, RELEASES) == []
    assert doc.text() == TABLE


def test_missing_table_is_created(tmp_path: Path) -> None:
    doc = TableDoc(tmp_path / "series.toml")
    map_release(doc, "x", V("6.4.33"), 0, RELEASES)
    doc.save()
    data = tomllib.loads((tmp_path / "series.toml").read_text())
    assert data["range"] == [{"series": "x", "first": "6.4.33", "last": "6.4.33",
                              "max_fuzz": 0}]


def test_failed_check_leaves_the_file_alone(table_file: Path) -> None:
    doc = TableDoc(table_file)
    map_release(doc, "new", V("6.4.16"), 0, RELEASES)

    def refuse(ranges: list[Range]) -> None:
        raise ConfigError("no")

    with pytest.raises(ConfigError):
        doc.save(refuse)
    assert table_file.read_text() == TABLE
    assert [p.name for p in table_file.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_series_file_text_round_trips_awkward_strings() -> None:
    text = series_file_text('we"ird', V("6.5.0.beta7"), 'quote " back\\slash\ttab\nline',
                            ["0001-a.patch"], comment="two\nlines")
    data = tomllib.loads(text)
    assert data == {"name": 'we"ird', "base": "6.5.0.beta7",
                    "description": 'quote " back\\slash\ttab\nline', "patches": ["0001-a.patch"]}
    assert text.startswith("# two\n# lines\n")


def test_a_table_written_newest_first_stays_so(table_file: Path) -> None:
    blocks = TABLE.split("\n\n# ")
    table_file.write_text(blocks[0] + "\n\n# " + blocks[2] + "\n# " + blocks[1])
    assert [e[0] for e in entries(table_file)] == ["cur", "old"]
    doc = TableDoc(table_file)
    map_release(doc, "new", V("6.4.16"), 0, RELEASES)
    map_release(doc, "x", V("6.5.0.beta7"), 0, RELEASES)
    doc.save()
    assert [e[0] for e in entries(table_file)] == ["x", "cur", "new", "old"]


def test_the_real_table_reads_the_same_and_keeps_its_comments(tmp_path: Path) -> None:
    from harness import paths

    real = paths.PATCHES_DIR / "series.toml"
    if not real.is_file():
        pytest.skip("patches/series.toml is not written yet")
    expected = [(e.series, e.first, e.last, e.max_fuzz) for e in load_table(paths.PATCHES_DIR)]
    assert [(r.series, r.first, r.last, r.max_fuzz) for r in TableDoc(real).ranges()] == expected

    copy = tmp_path / "series.toml"
    copy.write_text(real.read_text())
    newest = max(expected, key=lambda e: e[2])
    later = Version(newest[2].major, newest[2].minor, newest[2].patch + 1)
    doc = TableDoc(copy)
    map_release(doc, newest[0], later, 0, [*RELEASES, later], lambda v: True)
    before, after = real.read_text().splitlines(), doc.text().splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [(f'last = "{newest[2]}"', f'last = "{later}"')]
