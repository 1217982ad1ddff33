"""The README's "Patched 6.x vs fetchmail 7" rc-file rows are what both parsers say.

Each row of the keyword table names an rc-file fragment; patched 6.4.33 and fetchmail 7
(`next`, built by the harness) each read it with --configdump. A cell that starts "syntax
error" must be a syntax error for that parser, and only then; "configuration error" likewise;
a few rows also claim what the dump shows. A row without a case here fails the test, so the
table cannot grow claims nobody checked.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.skips import FETCHMAIL_UPSTREAM, docker_available, skip_loudly
from tests.patches.fetchmail_box import FetchmailBox

pytestmark = [pytest.mark.slow, pytest.mark.fetchmail_source, pytest.mark.docker]

README = Path(__file__).resolve().parents[2] / "README.md"
MARK = "<!-- fetchmail7-keywords -->"
POLL = 'poll mail.example.org protocol imap {server} user "jane" {user}\n'


@dataclass(frozen=True)
class Case:
    """An rc file for a row; `patched`/`seven`: a regex the dump must show when it parses."""

    server: str = "auth oauthbearer"  # server options
    user: str = 'passwordfile "/nonexistent/token" ssl'
    patched: str = ""
    seven: str = ""


CASES = {
    "`ssl`": Case(patched=r"'ssl':TRUE", seven=r"ssl is obsolescent"),
    "`sslmode wrapped`": Case(user='passwordfile "/t" sslmode wrapped',
                              seven=r"\"sslmode\":\"wrapped\""),
    '`sslproto "TLS1.2+"`': Case(user='passwordfile "/t" sslproto "TLS1.2+"',
                                 patched=r"\"sslproto\":\"TLS1.2\+\""),
    "`auth xoauth2`": Case(server="auth xoauth2", patched=r"\"auth\":\"xoauth2\""),
    "`bearerwithouttls`": Case(server="auth oauthbearer bearerwithouttls", user='passwordfile "/t"',
                               patched=r"'bearerwithouttls':TRUE"),
    '`passwordeval "CMD"`, `passwordfd N`': Case(user='passwordeval "cat /t" ssl'),
    "`password` + `passwordfile`": Case(user='password "secret" passwordfile "/t" ssl',
                                        seven=r"\"password\":\"secret\""),
    '`passwordfile "token"` (relative)': Case(user='passwordfile "token" ssl',
                                              patched=r"\"passwordfile\":\"{rcdir}/token\""),
}


def _rows() -> dict[str, tuple[str, str]]:
    text = README.read_text()
    assert MARK in text, "README has no fetchmail 7 keyword table"
    rows: dict[str, tuple[str, str]] = {}
    for line in text.split(MARK, 1)[1].strip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        first, patched, seven = (cell.strip() for cell in line.strip("|").split(" | "))
        rows[first] = (patched, seven)
    return rows


def _verdict(done: subprocess.CompletedProcess[str]) -> str:
    said = done.stdout + done.stderr
    if "syntax error" in said:
        return "syntax error"
    if done.returncode == 5 and "configuration invalid" in said:
        return "configuration error"
    assert done.returncode == 0, said
    return "parsed"


def _claimed(cell: str) -> str:
    for verdict in ("syntax error", "configuration error"):
        if cell.startswith(verdict):
            return verdict
    return "parsed"


@pytest.fixture(scope="module")
def fetchmail7(session_cache: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[FetchmailBox]:
    """fetchmail 7 (`next`, no series) as the harness builds it, in its build image."""
    from harness.build.builder import BuildSpec, build
    from harness.build.engine import ensure_engine
    from harness.build.images import ensure_build_image
    from harness.source.mirror import FetchmailSource
    from harness.source.versions import Version

    if FETCHMAIL_UPSTREAM is None:
        skip_loudly("no fetchmail source: set FETCHMAIL_UPSTREAM (see tests/helpers/skips.py)")
    if not docker_available():
        skip_loudly("no Docker engine to build and run fetchmail (run `fetchmail-harness setup`)")
    source = FetchmailSource(str(FETCHMAIL_UPSTREAM), cache=session_cache)
    result = build(BuildSpec(Version.parse("next"), "bookworm", None), source=source,
                   cache=session_cache)
    image, _ = ensure_build_image(ensure_engine(), "bookworm")
    box = FetchmailBox.start(image.tag, result.binary, "plain",
                             [tmp_path_factory.getbasetemp(), result.binary.parent])
    try:
        assert "This is fetchmail release 7" in box.version()
        yield box
    finally:
        box.stop()


def test_every_keyword_row_has_a_case() -> None:
    assert set(_rows()) == set(CASES)


@pytest.mark.parametrize("patched_fetchmail", ["plain"], indirect=True)
@pytest.mark.parametrize("row", sorted(CASES))
def test_keyword_row_is_what_both_parsers_say(patched_fetchmail: FetchmailBox,
                                              fetchmail7: FetchmailBox, home: Path,
                                              row: str) -> None:
    case = CASES[row]
    claims = _rows()[row]
    rc = home / "fetchmailrc"
    rc.write_text(POLL.format(user=case.user, server=case.server))
    rc.chmod(0o600)
    for name, box, claim, shows in (("patched 6.x", patched_fetchmail, claims[0], case.patched),
                                    ("fetchmail 7", fetchmail7, claims[1], case.seven)):
        done = box.run(["-f", str(rc), "--configdump"], home=home)
        said = done.stdout + done.stderr
        assert _verdict(done) == _claimed(claim), f"{name} on {row!r}:\n{said}"
        if shows and _claimed(claim) == "parsed":
            assert re.search(shows.format(rcdir=re.escape(str(home))), said), f"{name}:\n{said}"
