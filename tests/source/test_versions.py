from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.source.versions import Version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RELEASE_6-4-33", "6.4.33"),
        ("6.4.33", "6.4.33"),
        ("6.5.0.beta7", "6.5.0.beta7"),
        ("6.5.0beta7", "6.5.0.beta7"),
        ("next", "next"),
    ],
)
def test_parse_and_print(text: str, expected: str) -> None:
    assert str(Version.parse(text)) == expected


def test_tag_round_trip() -> None:
    for name in ("6.3.0", "6.4.33", "6.5.0.beta7", "next"):
        v = Version.parse(name)
        assert Version.parse(v.tag) == v
    assert Version.parse("6.4.33").tag == "RELEASE_6-4-33"


def test_ordering_numeric_and_prerelease() -> None:
    names = ["next", "6.5.0", "6.4.10", "6.5.0.beta7", "6.4.9", "6.3.26", "6.5.0.beta1"]
    ordered = [str(v) for v in sorted(Version.parse(n) for n in names)]
    assert ordered == ["6.3.26", "6.4.9", "6.4.10", "6.5.0.beta1", "6.5.0.beta7", "6.5.0", "next"]


@pytest.mark.parametrize(
    "tag", ["BRANCH_6-3", "SNAPSHOT_6-4-22-rc1", "BEFORE-SSL", "RELEASE_6-3-2_4678"]
)
def test_non_release_tags_are_ignored(tag: str) -> None:
    assert Version.from_tag(tag) is None


@pytest.mark.parametrize("bad", ["", "6.4", "latest", "6.4.x", "RELEASE_6-4"])
def test_bad_version_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a fetchmail version"):
        Version.parse(bad)
