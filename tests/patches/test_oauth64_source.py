"""What a packager or fetchmail's maintainer checks by reading the canonical series: new sources
translatable, one base64 implementation (fetchmail's), secrets wiped through one function, and
a manual that says what the code does."""

from __future__ import annotations

import re

import pytest

from harness.series.table import Series, load_series


@pytest.fixture(scope="module")
def series() -> Series:
    return load_series("oauth64")


def _added(series: Series, path: str) -> str:
    """The lines the series adds to `path` (for a new file: its content)."""
    out: list[str] = []
    for patch in series.patches:
        text = patch.path.read_text(encoding="utf-8")
        for section in re.split(r"^diff --git ", text, flags=re.MULTILINE)[1:]:
            if section.startswith(f"a/{path} b/{path}\n"):
                out += [ln[1:] for ln in section.splitlines()
                        if ln.startswith("+") and not ln.startswith("+++")]
    return "\n".join(out)


def test_new_sources_are_in_potfiles(series: Series) -> None:
    added = _added(series, "po/POTFILES.in").split()
    assert "pwfile.c" in added and "oauthsasl.c" in added, added


def test_base64_is_fetchmails_own(series: Series) -> None:
    code = _added(series, "oauthsasl.c")
    assert "to64frombits(" in code and "from64tobits(" in code
    assert "ABCDEFGHIJKLMNOPQRSTUVWXYZ" not in code, "a second base64 alphabet"


def test_secrets_are_wiped_by_secret_wipe_not_memset(series: Series) -> None:
    for path in ("pwfile.c", "oauthsasl.c", "transact.c", "getpass.c", "netrc.c"):
        added = _added(series, path)
        assert added, f"the series does not touch {path}"
        assert "memset(" not in added, f"{path}: memset before free is a dead store"
    wipe = _added(series, "xmalloc.c")
    assert "explicit_bzero" in wipe and "volatile" in wipe, wipe
    assert "explicit_bzero" in _added(series, "configure.ac")


def test_manual_says_what_the_code_does(series: Series) -> None:
    man = re.sub(r"\\f[BIRP]|\\-|\\&", lambda m: "-" if m[0] == "\\-" else "",
                 _added(series, "fetchmail.man"))
    text = " ".join(man.split())
    for claim in (
        "OAUTHBEARER first, then XOAUTH2, and then stops",
        "never sent with another method",
        "bearerwithouttls",
        "a FIFO, device or directory is refused at once",
        "relative to the directory of the rc file",
        "status 14 (server busy)",
        '"<token hidden>"',
        "configuration error",
    ):
        assert claim in text, f"the manual does not say: {claim}"
