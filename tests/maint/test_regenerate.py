"""`series regenerate` on real fetchmail history: a fix made once in the canonical series reaches
the derived line; a conflict is resolved once by a human, recorded, and replayed after."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from tests.helpers.workshop import (
    DEFINE_OAUTH,
    ENVELOPE_COMMENT,
    IMAP_HOOK,
    Cli,
    Commit,
    Workshop,
    git,
)

pytestmark = pytest.mark.fetchmail_source

# ENVELOPE_COMMENT edits a line that upstream changed between 6.4.0 and 6.4.22: carrying it
# from the canonical series (6.4.0) onto the derived line (6.4.22) conflicts.
RESOLVED = "    char *envelope;\t\t/* envelope address list header, or disabled */\n"


def _setup(workshop: Workshop, commits: list[Commit]) -> Path:
    workshop.make_series("canon", "6.4.0", commits)
    late = workshop.patches_dir / "late"
    late.mkdir()
    (late / "series.toml").write_text(
        'name = "late"\nbase = "6.4.22"\nderived_from = "canon"\n'
        'description = "canon carried to 6.4.22"\npatches = []\n')
    workshop.table(("canon", "6.4.0", "6.4.0", "fuzz0"), ("late", "6.4.22", "6.4.22", "fuzz0"))
    return late


def _remake(workshop: Workshop, commits: list[Commit]) -> None:
    """The canonical series made anew: a fix made there."""
    shutil.rmtree(workshop.patches_dir / "canon")
    workshop.make_series("canon", "6.4.0", commits)


def _worktree(stderr: str) -> Path:
    line = next(ln for ln in stderr.splitlines() if ln.strip().startswith("cd "))
    return Path(line.strip()[3:])


def _resolve(tree: Path, path: str, text: str) -> None:
    """Replace the one conflict region of `path` by `text`, as a maintainer would."""
    lines = (tree / path).read_text(errors="surrogateescape").splitlines(keepends=True)
    start = next(i for i, ln in enumerate(lines) if ln.startswith("<<<<<<< "))
    end = next(i for i, ln in enumerate(lines) if ln.startswith(">>>>>>> "))
    lines[start:end + 1] = [text]
    (tree / path).write_text("".join(lines), errors="surrogateescape")


def _patches(series_dir: Path) -> str:
    names = tomllib.loads((series_dir / "series.toml").read_text())["patches"]
    return "".join((series_dir / n).read_text() for n in names)


def test_a_fix_in_the_canonical_series_reaches_the_line_and_conflicts_are_recorded(
        workshop: Workshop, cli: Cli) -> None:
    late = _setup(workshop, [DEFINE_OAUTH, ENVELOPE_COMMENT])
    common = ("--patches-dir", str(workshop.patches_dir))

    stopped = cli("series", "regenerate", *common)
    assert stopped.returncode == 4, stopped.stderr
    assert "0002-Document-that-the-envelope" in stopped.stderr
    assert "fetchmail.h: 1 conflict region(s)" in stopped.stderr
    assert "series regenerate --continue" in stopped.stderr
    tree = _worktree(stopped.stderr)
    assert "<<<<<<< upstream" in (tree / "fetchmail.h").read_text(errors="surrogateescape")
    busy = cli("series", "regenerate", *common)
    assert busy.returncode == 2 and "stopped at a conflict" in busy.stderr

    early = cli("series", "regenerate", "--continue")
    assert early.returncode == 4 and "still conflicted: fetchmail.h" in early.stderr
    _resolve(tree, "fetchmail.h", RESOLVED)
    git(tree, "add", "fetchmail.h")
    done = cli("series", "regenerate", "--continue")
    assert done.returncode == 0, done.stderr
    assert "recorded 1 resolution(s)" in done.stdout
    [record] = (late / "resolutions").glob("*.resolution")
    assert f"={RESOLVED}" in record.read_text()
    meta = tomllib.loads((late / "series.toml").read_text())
    assert meta["derived_from"] == "canon" and len(meta["patches"]) == 2
    assert "+" + RESOLVED in _patches(late)
    assert (late / "series").read_text().splitlines()[1:] == meta["patches"]
    assert cli("series", "regenerate", "--check", *common).returncode == 0

    # a fix in the canonical series: made once, regenerated everywhere, the conflict replayed
    fixed = Commit(DEFINE_OAUTH.subject, [(path, old, new.replace("RFC 7628", "RFC 7628 sec. 3"))
                                          for path, old, new in DEFINE_OAUTH.edits],
                   DEFINE_OAUTH.body)
    _remake(workshop, [fixed, ENVELOPE_COMMENT])

    stale = cli("series", "regenerate", "--check", *common)
    assert stale.returncode == 1 and "late/0001-" in stale.stdout
    again = cli("series", "regenerate", *common)
    assert again.returncode == 0, again.stderr
    assert "1 recorded resolution(s) replayed" in again.stdout
    assert "RFC 7628 sec. 3" in _patches(late) and "+" + RESOLVED in _patches(late)
    assert [record] == list((late / "resolutions").glob("*.resolution"))


def test_a_changed_conflict_needs_a_human_again_and_abort_records_nothing(
        workshop: Workshop, cli: Cli) -> None:
    late = _setup(workshop, [ENVELOPE_COMMENT])
    common = ("--patches-dir", str(workshop.patches_dir))
    tree = _worktree(cli("series", "regenerate", *common).stderr)
    _resolve(tree, "fetchmail.h", RESOLVED)
    git(tree, "add", "fetchmail.h")
    assert cli("series", "regenerate", "--continue").returncode == 0

    other = Commit(ENVELOPE_COMMENT.subject, [
        ("fetchmail.h", "    char *envelope;\t\t\t/* envelope address list header */\n",
         "    char *envelope;\t\t\t/* envelope address list header (or none) */\n")])
    _remake(workshop, [other])
    before = sorted(p.name for p in (late / "resolutions").iterdir())

    stopped = cli("series", "regenerate", *common)
    assert stopped.returncode == 4 and "no recorded resolution fits" in stopped.stderr
    aborted = cli("series", "regenerate", "--abort")
    assert aborted.returncode == 0 and "nothing was recorded" in aborted.stdout
    assert sorted(p.name for p in (late / "resolutions").iterdir()) == before
    assert cli("series", "regenerate", "--continue").returncode == 2  # nothing to continue


def test_an_amendment_is_recorded_and_applied_on_top(workshop: Workshop, cli: Cli) -> None:
    late = _setup(workshop, [DEFINE_OAUTH, IMAP_HOOK])
    common = ("--patches-dir", str(workshop.patches_dir))
    assert cli("series", "regenerate", *common).returncode == 0  # merges cleanly

    asked = cli("series", "amend", "late", "0002", *common)
    assert asked.returncode == 4 and "an amendment is wanted" in asked.stderr
    tree = _worktree(asked.stderr)
    imap = tree / "imap.c"
    imap.write_text(imap.read_text(errors="surrogateescape").replace(
        "    /* OAUTHBEARER goes here (RFC 7628) */\n",
        "    /* OAUTHBEARER goes here (RFC 7628); 6.4.22 probes it first */\n"),
        errors="surrogateescape")
    done = cli("series", "regenerate", "--continue")
    assert done.returncode == 0, done.stderr
    [diff] = (late / "amendments" / "6.4.22").glob("*.diff")
    assert diff.name == "0002-imap-try-OAUTHBEARER-before-challenge-response.diff"
    assert "6.4.22 probes it first" in _patches(late)
    assert "recorded amendment applied" in done.stdout
    assert cli("series", "regenerate", "--check", *common).returncode == 0
    assert cli("series", "amend", "late", "0009", *common).returncode == 2


# xmalloc.h appeared in 6.3.11: carrying a patch to it onto 6.3.10 is not a text conflict.
XSTRDUP = "char *xstrdup(const char *src);\n"
WIPE_DECL = Commit("Declare secret_wipe", [
    ("xmalloc.h", XSTRDUP, XSTRDUP + "void secret_wipe(void *, size_t);\n"),
    ("WIPE-NOTES", "", "secret_wipe() is declared with xmalloc\n")])


def test_a_file_the_release_lacks_is_decided_once_and_a_range_amended(
        workshop: Workshop, cli: Cli) -> None:
    workshop.make_series("canon", "6.3.26", [WIPE_DECL])
    old = workshop.patches_dir / "old"
    old.mkdir()
    (old / "series.toml").write_text(
        'name = "old"\nbase = "6.3.10"\nderived_from = "canon"\ndescription = "d"\n'
        "patches = []\n")
    workshop.table(("canon", "6.3.26", "6.3.26", "fuzz0"), ("old", "6.3.10", "6.3.10", "fuzz0"),
                   ("old", "6.3.8", "6.3.9", "3way"))
    common = ("--patches-dir", str(workshop.patches_dir))

    stopped = cli("series", "regenerate", *common)
    assert stopped.returncode == 4
    assert "xmalloc.h: the release has no such file; the patch changes it" in stopped.stderr
    tree = _worktree(stopped.stderr)
    git(tree, "rm", "-q", "xmalloc.h")  # keep it away; the declaration goes elsewhere (below)
    done = cli("series", "regenerate", "--continue")
    assert done.returncode == 0, done.stderr
    [record] = (old / "resolutions").glob("*.resolution")
    assert "# decision: delete" in record.read_text()
    assert "xmalloc.h" not in _patches(old)
    assert "1 recorded resolution(s)" in done.stdout  # replayed on 6.3.8 and 6.3.9 too

    asked = cli("series", "amend", "old", "0001", "--onto", "6.3.8..6.3.9", *common)
    assert asked.returncode == 4 and "6.3.8" in asked.stderr
    tree = _worktree(asked.stderr)
    header = tree / "fetchmail.h"
    header.write_text(header.read_text(errors="surrogateescape").replace(
        "char *xstrdup(const char *);\n",
        "char *xstrdup(const char *);\nvoid secret_wipe(void *, size_t);\n"),
        errors="surrogateescape")
    amended = cli("series", "regenerate", "--continue")
    assert amended.returncode == 0, amended.stderr
    [diff] = (old / "amendments" / "6.3.8..6.3.9").glob("*.diff")
    assert "+void secret_wipe(void *, size_t);" in diff.read_text()
    assert amended.stdout.count("1 recorded amendment(s)") == 2  # 6.3.8 and 6.3.9
    assert "+void secret_wipe" not in _patches(old)  # the stored line (6.3.10) is not amended
    assert cli("series", "regenerate", "--check", *common).returncode == 0
