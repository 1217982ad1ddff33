"""Apply: GNU patch on real fetchmail trees, reported as clean / offset / fuzz / failed."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import PatchError
from harness.series.apply import CLEAN, FAILED, FUZZ, OFFSET, apply_series, require_ok
from harness.series.table import load_series
from tests.helpers.patchkit import edit_lines, format_patch, write_series, write_table

pytestmark = pytest.mark.fetchmail_source

TreeOf = Callable[[str], Path]


def _bump_passwordlen(tree: Path) -> str:
    """A patch (made against `tree`) raising PASSWORDLEN in fetchmail.h to 10000."""
    old = (tree / "fetchmail.h").read_text()
    new = old.replace("PASSWORDLEN\t256", "PASSWORDLEN\t10000", 1)
    assert new != old
    return format_patch("Raise PASSWORDLEN", [("fetchmail.h", old, new)])


def _series(tmp_path: Path, patches: dict[str, str], name: str = "t") -> Path:
    root = tmp_path / "patches"
    write_series(root, name, patches)
    return root


def _apply(root: Path, tree: Path, **kw: object) -> tuple[object, ...]:
    report = apply_series(load_series("t", root), tree, **kw)  # type: ignore[arg-type]
    return report.results


def test_clean_patch(tree_of: TreeOf, tmp_path: Path) -> None:
    tree = tree_of("6.4.33")
    root = _series(tmp_path, {"0001-len.patch": _bump_passwordlen(tree)})
    report = apply_series(load_series("t", root), tree)
    [result] = report.results
    assert result.status == CLEAN and result.files == ("fetchmail.h",)
    assert report.ok and "PASSWORDLEN\t10000" in (tree / "fetchmail.h").read_text()
    assert not list(tree.glob("*.orig")) and not list(tree.glob("*.rej"))


def test_offset_is_reported_in_lines(tree_of: TreeOf, tmp_path: Path) -> None:
    base = tree_of("6.4.33")
    root = _series(tmp_path, {"0001-len.patch": _bump_passwordlen(base)})
    target = tree_of("6.4.32")
    header = target / "fetchmail.h"
    header.write_text(edit_lines(header.read_text(), "#define", ["/* a */", "/* b */", "/* c */"],
                                 offset=0))
    report = apply_series(load_series("t", root), target)
    [result] = report.results
    assert result.status == OFFSET and result.max_offset == 3 and result.fuzz == 0
    assert report.ok and "offset up to 3 lines" in report.render()


def test_fuzz_level_and_max_fuzz(tree_of: TreeOf, tmp_path: Path) -> None:
    base = tree_of("6.4.33")
    root = _series(tmp_path, {"0001-len.patch": _bump_passwordlen(base)})
    series = load_series("t", root)
    target = tree_of("6.4.33")
    header = target / "fetchmail.h"
    # change the first context line of the hunk (3 lines above PASSWORDLEN)
    header.write_text(header.read_text().replace("MSGBUFSIZE\t8192", "MSGBUFSIZE\t8193", 1))
    report = apply_series(series, target, max_fuzz=0, dry_run=True)
    [result] = report.results
    assert result.status == FUZZ and result.fuzz == 1
    assert report.fuzz_exceeded and not report.ok
    assert "exceeds the table's max_fuzz 0" in report.render()
    assert apply_series(series, target, max_fuzz=1, dry_run=True).ok
    assert apply_series(series, target, max_fuzz=None, dry_run=True).ok
    with pytest.raises(PatchError, match="fuzz 1"):
        require_ok(report)


def test_failed_hunk_names_file_and_hunk(tree_of: TreeOf, tmp_path: Path) -> None:
    base = tree_of("6.4.33")
    old = (base / "imap.c").read_text()
    new = edit_lines(old, "static int imap_ok(int sock, char *argbuf)", ["/* one */"])
    new = edit_lines(new, "imap_getrange", ["/* two */"], offset=0)
    patches = {
        "0001-len.patch": _bump_passwordlen(base),
        "0002-imap.patch": format_patch("Touch imap.c twice", [("imap.c", old, new)]),
    }
    root = _series(tmp_path, patches)
    target = tree_of("6.4.33")
    (target / "imap.c").write_text(old.replace("static int imap_ok(int sock, char *argbuf)",
                                               "static int imap_ok2(int sock, char *argbuf)"))
    report = apply_series(load_series("t", root), target)
    first, second = report.results
    assert first.status == CLEAN
    assert second.status == FAILED and not second.applied
    starts = re.findall(r"^@@ -\d+,\d+ \+(\d+),", patches["0002-imap.patch"], re.MULTILINE)
    assert len(starts) == 2  # hunk #1 (imap_getrange) still applies, hunk #2 (imap_ok) not
    assert second.failures == (f"imap.c: hunk #2 at line {starts[1]}",)
    assert "/* two */" in (target / "imap.c").read_text()
    assert report.failed == (second,) and not report.ok
    assert "FAILED: 1 of 2 patches did not apply" in report.render()


def test_already_applied_patch_fails(tree_of: TreeOf, tmp_path: Path) -> None:
    tree = tree_of("6.4.33")
    root = _series(tmp_path, {"0001-len.patch": _bump_passwordlen(tree)})
    series = load_series("t", root)
    assert apply_series(series, tree).ok
    [again] = apply_series(series, tree).results
    assert again.status == FAILED and "already applied" in again.failures[0]


def test_new_file_is_created_once(tree_of: TreeOf, tmp_path: Path) -> None:
    tree = tree_of("6.4.33")
    text = format_patch("Add a file", [])
    text = text.replace("-- \n", "diff --git a/oauth2.c b/oauth2.c\nnew file mode 100644\n"
                        "--- /dev/null\n+++ b/oauth2.c\n@@ -0,0 +1,2 @@\n+int a;\n+int b;\n-- \n")
    root = _series(tmp_path, {"0001-new.patch": text})
    series = load_series("t", root)
    [first] = apply_series(series, tree).results
    assert first.status == CLEAN and (tree / "oauth2.c").read_text() == "int a;\nint b;\n"
    [again] = apply_series(series, tree).results
    assert again.status == FAILED
    assert again.failures == ("oauth2.c: would create a file that already exists",)


def test_patch_for_a_missing_file_fails(tree_of: TreeOf, tmp_path: Path) -> None:
    tree = tree_of("6.4.33")
    text = format_patch("Touch a file 6.4.33 lacks", [("oauth2.c", "a\nb\nc\n", "a\nB\nc\n")])
    root = _series(tmp_path, {"0001-missing.patch": text})
    [result] = apply_series(load_series("t", root), tree).results
    assert result.status == FAILED and "no file to patch" in result.failures[0]


def test_dry_run_leaves_the_tree_alone(tree_of: TreeOf, tmp_path: Path) -> None:
    tree = tree_of("6.4.33")
    before = (tree / "fetchmail.h").read_text()
    root = _series(tmp_path, {"0001-len.patch": _bump_passwordlen(tree)})
    report = apply_series(load_series("t", root), tree, dry_run=True)
    assert report.ok and report.dry_run and report.tree == tree
    assert (tree / "fetchmail.h").read_text() == before


def test_apply_command_reports_and_sets_exit_status(
    tree_of: TreeOf, tmp_path: Path, fetchmail_upstream: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "patches"
    write_series(root, "good", {"0001-len.patch": _bump_passwordlen(tree_of("6.4.33"))})
    write_series(root, "bad", {"0001-x.patch": format_patch(
        "Nothing matches", [("imap.c", "no\nsuch\nlines\n", "no\nsuch\ntext\n")])})
    write_table(root, [("good", "6.4.30", "6.4.33", 0), ("bad", "6.4.0", "6.4.29", 0)])
    common = ["--patches-dir", str(root), "--upstream", fetchmail_upstream]
    assert main(["apply", "6.4.33", *common]) == 0
    out = capsys.readouterr().out
    assert "clean   0001-len.patch" in out and "OK: 1 patches applied" in out
    assert main(["apply", "6.4.20", *common]) == 4
    assert "FAILED" in capsys.readouterr().out
    into = tmp_path / "patched"
    assert main(["apply", "6.4.31", "--series", "good", "--into", str(into), *common]) == 0
    assert "PASSWORDLEN\t10000" in (into / "fetchmail.h").read_text()
    assert main(["apply", "next", *common]) == 2  # native OAuth: nothing to apply
