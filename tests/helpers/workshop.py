"""Throwaway patch series made with real git on real fetchmail releases."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

Cli = Callable[..., subprocess.CompletedProcess[str]]
Edit = tuple[str, str, str]  # (file, old text, new text): `old` must occur exactly once


@dataclass(frozen=True)
class Commit:
    subject: str
    edits: Sequence[Edit]
    body: str = ""


# Edits against fetchmail 6.4.0, chosen for what upstream did to those lines by 6.4.22:
# untouched context (clean), code that moved down (clean at an offset), a neighbour line
# that changed (three-way merge needed), and the very line that changed (conflict).
DEFINE_OAUTH = Commit(
    "Add the oauthbearer authentication mode",
    [("fetchmail.h",
      "#define\t\tA_EXTERNAL\t10\t/* external authentication (client cert) */\n",
      "#define\t\tA_EXTERNAL\t10\t/* external authentication (client cert) */\n"
      "#define\t\tA_OAUTHBEARER\t11\t/* OAuth 2.0 bearer token (RFC 7628) */\n")],
    body="The mode is parsed and stored; the protocols use it in later patches.",
)
IMAP_HOOK = Commit(
    "imap: try OAUTHBEARER before challenge-response",
    [("imap.c",
      "    /*\n     * No such luck.  OK, now try the variants that mask your password\n",
      "    /* OAUTHBEARER goes here (RFC 7628) */\n\n"
      "    /*\n     * No such luck.  OK, now try the variants that mask your password\n")],
)
PASSWORDFILE_FIELD = Commit(
    "Add a passwordfile field to struct hostdata",
    [("fetchmail.h",
      "    char *qvirtual;\t\t\t/* prefix removed from local user id */\n",
      "    char *qvirtual;\t\t\t/* prefix removed from local user id */\n"
      "    char *passwordfile;\t\t/* re-read the password from this file */\n")],
)
ENVELOPE_COMMENT = Commit(
    "Document that the envelope header can be disabled",
    [("fetchmail.h",
      "    char *envelope;\t\t\t/* envelope address list header */\n",
      "    char *envelope;\t\t\t/* envelope address list header, or disabled */\n")],
)
NEW_FILE = Commit(
    "Add OAuth notes",
    [("OAUTH-NOTES", "", "Notes on the OAuth patches.\n")],
)


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="Pat Maintainer", GIT_AUTHOR_EMAIL="pat@example.org",
               GIT_AUTHOR_DATE="2024-01-02T03:04:05Z", GIT_COMMITTER_NAME="Pat Maintainer",
               GIT_COMMITTER_EMAIL="pat@example.org", GIT_COMMITTER_DATE="2024-01-02T03:04:05Z")
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def tag_of(version: str) -> str:
    return "RELEASE_" + version.replace(".", "-") if "beta" not in version else version


@dataclass
class Workshop:
    """Makes series in a patches dir, from commits on a scratch clone of the upstream."""

    upstream: str
    root: Path
    patches_dir: Path

    def checkout(self, version: str) -> Path:
        """A fresh, private clone of fetchmail at `version` (for independent checks)."""
        where = self.root / f"checkout-{version}-{len(list(self.root.iterdir()))}"
        subprocess.run(["git", "clone", "-q", "--no-checkout", self.upstream, str(where)],
                       check=True)
        git(where, "checkout", "-q", tag_of(version))
        return where

    def make_series(self, name: str, base: str, commits: Sequence[Commit],
                    description: str = "throwaway test series") -> Path:
        scratch = self.checkout(base)
        for commit in commits:
            for path, old, new in commit.edits:
                file = scratch / path
                if old == "":
                    file.write_text(new)
                else:
                    text = file.read_text(errors="surrogateescape")
                    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)}x in {path}"
                    file.write_text(text.replace(old, new), errors="surrogateescape")
                git(scratch, "add", path)
            message = commit.subject + (f"\n\n{commit.body}" if commit.body else "")
            git(scratch, "commit", "-q", "-m", message)
        out = self.patches_dir / name
        git(scratch, "format-patch", "-q", "--numbered", "-o", str(out), tag_of(base))
        names = sorted(p.name for p in out.glob("*.patch"))
        listed = "".join(f'    "{n}",\n' for n in names)
        (out / "series.toml").write_text(
            f'name = "{name}"\nbase = "{base}"\ndescription = "{description}"\n'
            f"patches = [\n{listed}]\n")
        return out

    def table(self, *ranges: tuple[str, str, str, int]) -> Path:
        text = "# test table\n"
        for series, first, last, fuzz in ranges:
            text += (f'\n[[range]]\nseries = "{series}"\nfirst = "{first}"\nlast = "{last}"\n'
                     f"max_fuzz = {fuzz}\n")
        path = self.patches_dir / "series.toml"
        path.write_text(text)
        return path
