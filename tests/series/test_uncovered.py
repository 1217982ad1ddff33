"""`uncovered` on real fetchmail tags, with throwaway series."""

from __future__ import annotations

import pytest

from harness.series.gaps import current_releases
from harness.source.versions import Version
from tests.helpers.workshop import ENVELOPE_COMMENT, NEW_FILE, PASSWORDFILE_FIELD, Cli, Workshop

pytestmark = pytest.mark.fetchmail_source


def reasons(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[1].startswith(("RELEASE_", "6.")):
            found[parts[0]] = parts[2]
    return found


def test_all_covered_exits_zero(workshop: Workshop, cli: Cli) -> None:
    workshop.make_series("notes", "6.4.0", [NEW_FILE])  # a new file applies everywhere
    workshop.table(("notes", "6.3.0", "6.5.0.beta7", 0))

    out = cli("uncovered", "--patches-dir", str(workshop.patches_dir))

    assert out.returncode == 0, out.stdout + out.stderr
    assert reasons(out.stdout) == {}
    assert "releases covered (table and apply check)" in out.stdout
    total = int(out.stdout.split(" of ")[1].split()[0])
    assert total >= 61 + 1  # RELEASE_6-3-0 .. RELEASE_6-4-33 and 6.5.0.beta7, never `next`
    assert "next" not in out.stdout
    assert "not counted (superseded pre-releases): 6.5.0.beta1" in out.stdout


def test_unmapped_and_no_longer_applying_releases_are_listed(
        workshop: Workshop, cli: Cli) -> None:
    workshop.make_series("demo", "6.4.0", [PASSWORDFILE_FIELD, ENVELOPE_COMMENT])
    workshop.table(("demo", "6.4.0", "6.4.33", 0))

    out = cli("uncovered", "--patches-dir", str(workshop.patches_dir))

    assert out.returncode == 1
    gaps = reasons(out.stdout)
    assert "no series maps it" in gaps["6.3.26"] and "closest: demo" in gaps["6.3.26"]
    assert "no series maps it" in gaps["6.5.0.beta7"]
    assert "6.4.0" not in gaps and "6.4.1" not in gaps
    # upstream rewrote the envelope line between 6.4.1 and 6.4.22 (the SIGSEGV fix)
    assert "demo no longer applies" in gaps["6.4.22"]
    assert "0002-Document-that-the-envelope-header-can-be-disabled.patch" in gaps["6.4.22"]
    assert "fetchmail.h: hunk #1" in gaps["6.4.22"]
    assert "rebase --onto 6.4.22 --from demo" in gaps["6.4.22"]
    assert "6.4.33" in gaps and "next" not in gaps

    fast = cli("uncovered", "--no-apply-check", "--patches-dir", str(workshop.patches_dir))
    assert fast.returncode == 1
    fast_gaps = reasons(fast.stdout)
    assert "6.4.22" not in fast_gaps and "6.3.26" in fast_gaps
    assert "(table only)" in fast.stdout


def test_fuzz_beyond_max_fuzz_is_uncovered(workshop: Workshop, cli: Cli) -> None:
    # context that upstream changed by 6.4.22 makes GNU patch fall back to fuzz
    workshop.make_series("demo", "6.4.0", [PASSWORDFILE_FIELD])
    workshop.table(("demo", "6.4.22", "6.4.22", 0))
    strict = cli("uncovered", "--patches-dir", str(workshop.patches_dir))
    assert strict.returncode == 1
    assert "needs fuzz" in reasons(strict.stdout)["6.4.22"]

    workshop.table(("demo", "6.4.22", "6.4.22", 2))
    lenient = cli("uncovered", "--patches-dir", str(workshop.patches_dir))
    assert "6.4.22" not in reasons(lenient.stdout)


def test_a_patches_dir_without_a_table_is_an_error(workshop: Workshop, cli: Cli) -> None:
    """Not "0 of 62 releases covered": an install that lost patches/series.toml is broken."""
    out = cli("uncovered", "--no-apply-check", "--patches-dir", str(workshop.patches_dir))
    assert out.returncode == 2, out.stdout
    assert str(workshop.patches_dir / "series.toml") in out.stderr
    assert "covered" not in out.stdout


def test_only_the_newest_pre_release_of_an_unreleased_version_counts() -> None:
    names = ["6.2.5", "6.3.0", "6.4.0.beta1", "6.4.0", "6.5.0.beta1", "6.5.0.beta7",
             "6.5.0.rc1", "next"]
    got = current_releases(Version.parse(n) for n in names)
    assert [str(v) for v in got] == ["6.3.0", "6.4.0", "6.5.0.rc1"]
