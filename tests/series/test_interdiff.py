"""`diff`: series compared patch by patch, context and line-number churn ignored."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.cli import main
from harness.series.interdiff import compare_patches, parse_patch
from harness.series.table_edit import series_file_text
from harness.source.versions import Version

PATCH = """\
From {sha} Mon Sep 17 00:00:00 2001
From: Pat Maintainer <pat@example.org>
Date: Tue, 2 Jan 2024 03:04:05 +0000
Subject: [PATCH {n}/3] {subject}
 continued

{body}---
 imap.c | 3 ++-
 1 file changed, 2 insertions(+), 1 deletion(-)

diff --git a/imap.c b/imap.c
index 1111111..2222222 100644
--- a/imap.c
+++ b/imap.c
@@ -{line},7 +{line},8 @@ static int imap_getauth(int sock)
 {ctx1}
 context two
 context three
-    old line
+    new line
+{added}
 context four
 context five
 context six
{sig}
2.39.5
"""


def patch(n: int = 1, subject: str = "Do a thing", body: str = "Why.\n\n", line: int = 100,
          ctx1: str = "context one", added: str = "    added line", sha: str = "a" * 40) -> str:
    return PATCH.format(n=n, subject=subject, body=body, line=line, ctx1=ctx1, added=added,
                        sha=sha, sig="-- ")


def test_parse_keeps_message_and_change_blocks_only() -> None:
    parsed = parse_patch(patch())
    assert parsed.message == ["Do a thing continued", "", "Why."]
    assert list(parsed.files) == ["imap.c"]
    assert parsed.files["imap.c"].blocks == [("-    old line", "+    new line",
                                              "+    added line")]


def test_context_and_line_numbers_are_churn() -> None:
    d = compare_patches("p", patch(), patch(line=812, ctx1="other context", sha="b" * 40))
    assert d.status == "identical" and d.refreshed
    exact = compare_patches("p", patch(), patch(sha="c" * 40))
    assert exact.status == "identical" and not exact.refreshed


def test_changed_lines_and_messages_show_up() -> None:
    d = compare_patches("p", patch(), patch(added="    other line", body="Why not.\n\n"))
    assert d.status == "changed"
    assert "-+    added line" in d.file_diffs["imap.c"]
    assert "++    other line" in d.file_diffs["imap.c"]
    assert "-Why." in d.message_diff and "+Why not." in d.message_diff
    assert d.stat() == "changed: imap.c (+1 -1), commit message"


def test_plain_diffs_with_several_files() -> None:
    text = ("--- a/one.c\n+++ b/one.c\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n"
            "--- a/two.c\n+++ b/two.c\n@@ -5 +5 @@\n-p\n+q\n")
    parsed = parse_patch(text)
    assert parsed.message == []
    assert {k: v.blocks for k, v in parsed.files.items()} == {
        "one.c": [("-y", "+z")], "two.c": [("-p", "+q")]}


def write_series(root: Path, name: str, patches: dict[str, str]) -> None:
    (root / name).mkdir(parents=True)
    for file, text in patches.items():
        (root / name / file).write_text(text)
    (root / name / "series.toml").write_text(
        series_file_text(name, Version.parse("6.4.33"), "d", list(patches)))


@pytest.fixture
def two_series(tmp_path: Path) -> Path:
    write_series(tmp_path, "a", {
        "0001-same.patch": patch(1, "Same"),
        "0002-moved.patch": patch(2, "Moved", line=100),
        "0003-changed.patch": patch(3, "Changed"),
        "0004-gone.patch": patch(3, "Gone"),
    })
    write_series(tmp_path, "b", {
        "0001-same.patch": patch(1, "Same"),
        "0002-moved.patch": patch(2, "Moved", line=250, ctx1="new neighbour"),
        "0003-changed.patch": patch(3, "Changed", added="    different"),
        "0005-new.patch": patch(3, "New"),
    })
    return tmp_path


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def test_diff_command_reports_patch_by_patch(two_series: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = run("diff", "a", "b", "--patches-dir", str(two_series), capsys=capsys)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    status = {ln.split()[0]: " ".join(ln.split()[1:]) for ln in lines if ln.startswith("  000")}
    assert status == {
        "0001-same.patch": "identical",
        "0002-moved.patch": "identical (context/line numbers refreshed)",
        "0003-changed.patch": "changed: imap.c (+1 -1)",
        "0004-gone.patch": "only in A",
        "0005-new.patch": "only in B",
    }
    assert "totals: 2 identical, 1 changed, 1 only in A, 1 only in B" in out.stdout
    assert "=== 0003-changed.patch ===" in out.stdout
    assert "-+    added line" in lines and "++    different" in lines
    assert "=== 0002-moved.patch ===" not in out.stdout

    stat = run("diff", "a", "b", "--stat", "--patches-dir", str(two_series), capsys=capsys)
    assert stat.returncode == 1 and "===" not in stat.stdout and "totals:" in stat.stdout

    same = run("diff", "a", str(two_series / "a"), "--patches-dir", str(two_series),
               capsys=capsys)
    assert same.returncode == 0 and "totals: 4 identical, 0 changed" in same.stdout


def test_diff_of_an_unknown_series_is_a_config_error(
        two_series: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run("diff", "a", "zz", "--patches-dir", str(two_series), capsys=capsys)
    assert out.returncode == 2 and "unknown patch series 'zz'" in out.stderr
    nodir = run("diff", str(two_series / "nowhere"), "a", capsys=capsys)
    assert nodir.returncode == 2 and "not a series directory" in nodir.stderr
