"""Every patch of every series is a git-format-patch mail carrying its DEP-3 fields
(https://dep-team.pages.debian.net/deps/dep3/): Author (From:), Description (Subject: and
body), Origin, Forwarded and Last-Update.

git needs an address in From:, and this project has no mailbox: From: names the project
with a GitHub no-reply address, and the contact is Origin: the project's Homepage
(pyproject.toml), where its issue tracker is."""

from __future__ import annotations

import datetime
import email
import email.policy
import re
import tomllib
from pathlib import Path

import pytest

from harness.series.buildfixes import load_fixes
from harness.series.table import Patch, available_series, load_series

HOMEPAGE = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())[
    "project"]["urls"]["Homepage"]
AUTHOR = "fetchmail-oauth2 <fetchmail-oauth2-harness@users.noreply.github.com>"  # fits one line
ORIGIN = f"other, {HOMEPAGE}"
# RFC 2606/6761 names and the like: never an author's address
RESERVED = re.compile(r"@(?:[\w.-]+\.)?(?:invalid|localhost|example|test|local)>?$"
                      r"|@example\.(?:com|org|net)>?$")
PATCHES = [p for name in available_series() for p in load_series(name).patches] + [
    f.patch for f in load_fixes()]  # the build fixes too: a packager takes them alike


def test_author_is_a_public_address() -> None:
    assert HOMEPAGE.startswith("https://github.com/"), HOMEPAGE
    assert not RESERVED.search(AUTHOR)
    assert AUTHOR.endswith("@users.noreply.github.com>")


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: f"{p.path.parent.name}-{p.name[:4]}")
def test_patch_carries_dep3_fields(patch: Patch) -> None:
    path = patch.path
    text = path.read_text(encoding="utf-8")
    head, sep, _diff = text.partition("\n---\n")
    assert sep, f"{path.name}: no '---' line ending the description"
    mail = email.message_from_string(head, policy=email.policy.default)
    author = str(mail["From"] or "")
    assert author == AUTHOR, f"{path.name}: From: {author}"
    assert str(mail["Subject"] or "").startswith("[PATCH"), path.name
    body = mail.get_content()
    description = re.sub(r"^(Origin|Forwarded|Last-Update):.*$", "", body, flags=re.MULTILINE)
    assert len(description.strip()) > 40, f"{path.name}: no description body"
    fields = dict(re.findall(r"^(Origin|Forwarded|Last-Update): *(.+)$", body, re.MULTILINE))
    assert fields.get("Origin") == ORIGIN, f"{path.name}: Origin: {fields}"
    forwarded = fields.get("Forwarded", "").split(" ", 1)[0]  # a reason may follow
    assert forwarded in ("no", "not-needed") or forwarded.startswith("http"), \
        f"{path.name}: Forwarded: {fields}"
    datetime.date.fromisoformat(fields.get("Last-Update", "missing"))
