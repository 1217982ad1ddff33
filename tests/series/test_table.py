"""Series: the version -> series table, per-series files, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.series.table import (
    describe_coverage,
    load_series,
    load_table,
    series_for,
)
from harness.source.versions import Version
from tests.helpers.patchkit import write_series, write_table

PATCH = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Test <test@example.invalid>
Subject: [PATCH 1/2] Add a passwordfile option

---
 fetchmail.h | 1 +
"""


def _v(text: str) -> Version:
    return Version.parse(text)


@pytest.fixture
def patches(tmp_path: Path) -> Path:
    root = tmp_path / "patches"
    write_series(root, "oauth64", {"0001-a.patch": PATCH, "0002-b.patch": "Subject: B\n"})
    write_series(root, "oauth640", {"0001-a.patch": PATCH}, base="6.4.0")
    write_table(root, [("oauth64", "6.4.22", "6.4.33", 0), ("oauth640", "6.4.0", "6.4.21", 2)])
    return root


def test_series_for_resolves_ranges_inclusively(patches: Path) -> None:
    found = series_for(_v("6.4.33"), patches)
    assert found is not None
    series, entry = found
    assert series.name == "oauth64" and series.base == _v("6.4.33")
    assert [p.name for p in series.patches] == ["0001-a.patch", "0002-b.patch"]
    assert series.patches[0].subject == "Add a passwordfile option"
    assert series.patches[1].subject == "B"
    assert series.directory == patches / "oauth64"
    assert (entry.first, entry.last, entry.max_fuzz) == (_v("6.4.22"), _v("6.4.33"), 0)
    assert series_for(_v("6.4.22"), patches)[0].name == "oauth64"  # type: ignore[index]
    low = series_for(_v("6.4.0"), patches)
    assert low is not None and low[0].name == "oauth640" and low[1].max_fuzz == 2


def test_next_and_uncovered_releases_have_no_series(patches: Path) -> None:
    assert series_for(_v("next"), patches) is None
    assert series_for(_v("6.3.26"), patches) is None
    assert series_for(_v("6.5.0.beta7"), patches) is None
    assert describe_coverage(_v("next"), patches) == "native"
    assert describe_coverage(_v("6.3.26"), patches) == "uncovered"
    assert describe_coverage(_v("6.4.10"), patches) == "oauth640"


def test_a_missing_table_is_an_error_naming_it(tmp_path: Path) -> None:
    """Never "every release is uncovered": a wheel that lost its data said exactly that."""
    for probe in (lambda: load_table(tmp_path), lambda: series_for(_v("6.4.33"), tmp_path)):
        with pytest.raises(ConfigError, match=r"missing .*series\.toml") as info:
            probe()
        assert info.value.exit_code == 2 and str(tmp_path / "series.toml") in str(info.value)


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_an_empty_table_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    (tmp_path / "series.toml").write_text(text)
    with pytest.raises(ConfigError, match="maps no release to a series") as info:
        load_table(tmp_path)
    assert str(tmp_path / "series.toml") in str(info.value)


def test_content_hash_follows_patch_content(patches: Path) -> None:
    series = load_series("oauth64", patches)
    before = series.content_hash()
    assert load_series("oauth64", patches).content_hash() == before
    (patches / "oauth64" / "0002-b.patch").write_text("Subject: B changed\n")
    assert load_series("oauth64", patches).content_hash() != before


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[[range]\nseries = "x"', "malformed TOML"),
        ('[[range]]\nfirst = "6.4.0"\nlast = "6.4.1"\n', "missing `series`"),
        ('[[range]]\nseries = "oauth64"\nfirst = "6.4.x"\nlast = "6.4.1"\n', "not a fetchmail"),
        ('[[range]]\nseries = "oauth64"\nfirst = "6.4.9"\nlast = "6.4.1"\n', "is after last"),
        ('[[range]]\nseries = "nope"\nfirst = "6.4.0"\nlast = "6.4.1"\n', "unknown series 'nope'"),
        ('[[range]]\nseries = "oauth64"\nfirst = "6.4.0"\nlast = "6.4.1"\nmax_fuzz = -1\n',
         "max_fuzz"),
        ('[[range]]\nseries = "oauth64"\nfirst = 6\nlast = "6.4.1"\n', "must be a str"),
        ('range = "x"\n', "array of tables"),
    ],
)
def test_malformed_tables_are_clear_errors(patches: Path, table: str, message: str) -> None:
    (patches / "series.toml").write_text(table)
    with pytest.raises(ConfigError, match=message) as info:
        load_table(patches)
    assert str(patches / "series.toml") in str(info.value)


def test_overlapping_ranges_are_rejected(patches: Path) -> None:
    write_table(patches, [("oauth64", "6.4.20", "6.4.33", 0), ("oauth640", "6.4.0", "6.4.20", 0)])
    with pytest.raises(ConfigError, match=r"6\.4\.0\.\.6\.4\.20 overlaps oauth64"):
        load_table(patches)


def test_missing_patch_file_is_named(patches: Path) -> None:
    (patches / "oauth64" / "0002-b.patch").unlink()
    with pytest.raises(ConfigError, match=r"patch file 0002-b\.patch is missing"):
        load_series("oauth64", patches)


def test_unknown_series_lists_known_ones(patches: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown patch series 'zz'.*oauth64, oauth640"):
        load_series("zz", patches)
    with pytest.raises(ConfigError, match="unknown patch series"):
        load_series("../oauth64", patches)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "oauth64"\npatches = []\n', "missing `base`"),
        ('name = "other"\nbase = "6.4.33"\npatches = []\n', "does not match its directory"),
        ('base = "6.4.33"\npatches = "0001-a.patch"\n', "`patches` must be a list"),
        ('base = "6.4.33"\npatches = [1]\n', "must be strings"),
        ('base = "6.4.33"\npatches = ["0001-a.patch", "0001-a.patch"]\n', "listed twice"),
        ('base = "6.4.33\n', "malformed TOML"),
    ],
)
def test_malformed_series_files_are_clear_errors(patches: Path, text: str, message: str) -> None:
    (patches / "oauth64" / "series.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_series("oauth64", patches)
