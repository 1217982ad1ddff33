"""Every patch of the canonical series is a git-format-patch mail carrying its DEP-3 fields
(https://dep-team.pages.debian.net/deps/dep3/): Author (From:), Description (Subject: and
body), Forwarded and Last-Update."""

from __future__ import annotations

import datetime
import email
import email.policy
import re

import pytest

from harness.series.table import Patch, load_series

CANONICAL = "oauth64"  # the other series are derived from it (see patches/README.md)
RESERVED = re.compile(r"@(?:[\w.-]+\.)?(?:invalid|localhost)>?$|@example\.(?:com|org|net)>?$")


@pytest.mark.parametrize("patch", load_series(CANONICAL).patches, ids=lambda p: p.name[:4])
def test_patch_carries_dep3_fields(patch: Patch) -> None:
    path = patch.path
    text = path.read_text(encoding="utf-8")
    head, sep, _diff = text.partition("\n---\n")
    assert sep, f"{path.name}: no '---' line ending the description"
    mail = email.message_from_string(head, policy=email.policy.default)
    author = str(mail["From"] or "")
    assert re.fullmatch(r"[^<>]+ <[^@<>\s]+@[^@<>\s]+\.[a-z]+>", author), author
    assert not RESERVED.search(author), f"{path.name}: placeholder address {author}"
    assert str(mail["Subject"] or "").startswith("[PATCH"), path.name
    body = mail.get_content()
    assert len(body.split("\n\n")[0].strip()) > 40, f"{path.name}: no description body"
    fields = dict(re.findall(r"^(Forwarded|Last-Update): *(.+)$", body, re.MULTILINE))
    assert fields.get("Forwarded") in ("no", "not-needed") or fields.get(
        "Forwarded", "").startswith("http"), f"{path.name}: Forwarded: {fields}"
    datetime.date.fromisoformat(fields.get("Last-Update", "missing"))
