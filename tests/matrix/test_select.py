"""Cell identifiers, generation from a version list + series table, build grouping, selector."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cell.model import (
    MECHANISMS,
    PROTOCOLS,
    TRANSPORTS,
    Cell,
)
from harness.errors import ConfigError
from harness.matrix.select import Selector, cells_for, generate, group_by_build
from harness.source.versions import Version


def V(text: str) -> Version:
    return Version.parse(text)


@pytest.mark.parametrize(
    "ident",
    [
        "6.4.33-oauth64-bookworm-imap-xoauth2-tls",
        "6.4.33-oauth64-bullseye-pop3-oauthbearer-starttls",
        "6.5.0.beta7-oauth65-trixie-imap-oauthbearer-tls",
        "next-native-bookworm-imap-oauthbearer-starttls",
        "6.4.33-oauth64-bookworm+asan-pop3-xoauth2-tls",
        "next-native-bookworm-pop3-oauthbearer-tls-daemon",
        "6.3.12-oauth63-10-bullseye-imap-xoauth2-starttls",
        "6.3.12-oauth63-10-bullseye+asan-imap-xoauth2-starttls-daemon",
        "6.4.33-oauth64-bookworm-imap-xoauth2-tls-dovecot",
        "6.4.33-oauth64-bookworm-pop3-oauthbearer-tls-daemon-dovecot",
        "6.4.33-oauth64-bookworm-imap-xoauth2-tls-longtoken",
        "next-native-bookworm-imap-oauthbearer-tls-longtoken-dovecot",
        "6.4.33-oauth64-trixie+deb-pop3-oauthbearer-tls",
        "next-native-bookworm+deb-imap-oauthbearer-tls-daemon",
    ],
)
def test_identifier_round_trips(ident: str) -> None:
    cell = Cell.parse(ident)
    assert cell.identifier == ident
    assert Cell.parse(cell.identifier) == cell


def test_the_server_is_spelled_only_when_it_is_not_the_mock() -> None:
    dovecot = Cell.parse("6.4.33-oauth64-bookworm-pop3-oauthbearer-tls-daemon-dovecot")
    assert (dovecot.server, dovecot.daemon, dovecot.long_token) == ("dovecot", True, False)
    assert dovecot.build_group == "6.4.33-oauth64-bookworm", "one build serves both servers"
    mock = Cell.parse("6.4.33-oauth64-bookworm-pop3-oauthbearer-tls-daemon")
    assert mock.server == "mock" and mock.identifier.endswith("-tls-daemon")
    assert Cell.parse("6.4.33-oauth64-bookworm-imap-xoauth2-tls-longtoken").long_token
    tempfail = Cell.parse("6.4.33-oauth64-bookworm-pop3-oauthbearer-tls-tempfail-dovecot")
    assert (tempfail.temp_failure, tempfail.daemon, tempfail.server) == (True, False, "dovecot")
    assert tempfail.identifier == "6.4.33-oauth64-bookworm-pop3-oauthbearer-tls-tempfail-dovecot"


def test_a_cell_has_one_kind() -> None:
    with pytest.raises(ConfigError, match="at most one of"):
        Cell(V("6.4.33"), "oauth64", "bookworm", "imap", "xoauth2", "tls", daemon=True,
             temp_failure=True)


def test_hyphenated_series_name() -> None:
    cell = Cell.parse("6.3.12-oauth63-10-bullseye-imap-xoauth2-starttls-daemon")
    assert (cell.version, cell.series, cell.distro, cell.daemon) == (
        V("6.3.12"), "oauth63-10", "bullseye", True)
    assert cell.build_group == "6.3.12-oauth63-10-bullseye"


def test_identifier_fields() -> None:
    cell = Cell.parse("6.4.33-oauth64-bookworm+asan-pop3-xoauth2-starttls-daemon")
    assert (cell.version, cell.series, cell.distro, cell.sanitizer) == (
        V("6.4.33"), "oauth64", "bookworm", "asan")
    assert (cell.protocol, cell.mechanism, cell.transport, cell.daemon) == (
        "pop3", "xoauth2", "starttls", True)
    assert cell.build_group == "6.4.33-oauth64-bookworm+asan"


@pytest.mark.parametrize(
    ("ident", "message"),
    [
        ("6.4.33-oauth64-bookworm-imap-xoauth2", "not a cell identifier"),
        ("6.4.33-oauth64-bookworm-smtp-xoauth2-tls", "unknown protocol"),
        ("6.4.33-oauth64-bookworm-imap-plain-tls", "unknown mechanism"),
        ("6.4.33-oauth64-bookworm-imap-xoauth2-ssl", "unknown transport"),
        ("6.4.33-oauth64-jessie-imap-xoauth2-tls", "unknown distro"),
        ("6.4.33-oauth64-bookworm+msan-imap-xoauth2-tls", "unknown sanitizer"),
        ("6.4.33-oauth64-bookworm-imap-xoauth2-tls-forever", "unknown protocol"),
        ("6.4.33-bookworm-imap-xoauth2-tls", "not a cell identifier"),
        ("6.4.33--bookworm-imap-xoauth2-tls", "bad series name"),
        ("seven-oauth64-bookworm-imap-xoauth2-tls", "not a fetchmail version"),
        ("next-native-bookworm-imap-xoauth2-tls", "supports only oauthbearer"),
        ("6.4.33-OAuth-bookworm-imap-xoauth2-tls", "bad series name"),
        ("6.4.33-oauth64-bookworm-imap-xoauth2-tls-mock", "unknown protocol"),
        ("6.4.33-oauth64-bookworm-imap-xoauth2-tls-exim", "unknown protocol"),
        ("6.4.33-oauth64-bookworm+rpm-imap-xoauth2-tls", "unknown sanitizer"),
    ],
)
def test_bad_identifiers_are_clear_errors(ident: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Cell.parse(ident)


def _table(version: Version) -> str | None:
    if Version.parse("6.4.22") <= version <= Version.parse("6.4.33"):
        return "oauth64"
    if version == Version.parse("6.5.0.beta7"):
        return "oauth65"
    return None


VERSIONS = [V("6.3.26"), V("6.4.21"), V("6.4.22"), V("6.4.33"), V("6.5.0.beta7"), V("next")]


def test_generation_covers_the_product() -> None:
    cells = generate(VERSIONS, _table, distros=("bookworm", "trixie"), daemon=False,
                     long_token=False, temp_failure=False)
    ids = {c.identifier for c in cells}
    assert len(ids) == len(cells)
    # 3 patched versions x 2 distros x full product, next x 2 distros x oauthbearer only
    full = len(PROTOCOLS) * len(MECHANISMS) * len(TRANSPORTS)
    assert len(cells) == 3 * 2 * full + 2 * len(PROTOCOLS) * len(TRANSPORTS)
    assert "6.4.22-oauth64-trixie-pop3-xoauth2-starttls" in ids
    assert "6.5.0.beta7-oauth65-bookworm-imap-oauthbearer-tls" in ids
    assert "next-native-bookworm-imap-oauthbearer-starttls" in ids
    assert not any(str(c.version) in ("6.3.26", "6.4.21") for c in cells)  # uncovered: no cells
    assert not any(c.version.branch and c.mechanism == "xoauth2" for c in cells)


def test_generation_adds_daemon_and_sanitizer_cells() -> None:
    cells = generate([V("6.4.33"), V("next")], _table, distros=("bookworm",),
                     sanitizers=("asan",))
    daemons = [c.identifier for c in cells if c.daemon]
    assert "6.4.33-oauth64-bookworm-imap-oauthbearer-tls-daemon" in daemons
    assert "next-native-bookworm+asan-pop3-oauthbearer-tls-daemon" in daemons
    assert len(daemons) == 2 * 2 * len(PROTOCOLS)  # versions x (plain, asan) x protocols
    assert any(c.sanitizer == "asan" and c.mechanism == "xoauth2" for c in cells)


def test_packaged_cell_shares_its_build_with_the_plain_one() -> None:
    cell = Cell.parse("6.4.33-oauth64-bookworm+deb-imap-xoauth2-tls")
    assert cell.packaged and cell.sanitizer is None and cell.distro == "bookworm"
    assert cell.build_group == "6.4.33-oauth64-bookworm"
    assert not Cell.parse("6.4.33-oauth64-bookworm-imap-xoauth2-tls").packaged
    with pytest.raises(ConfigError, match="do not combine"):
        Cell("6.4.33", "oauth64", "bookworm", "imap", "xoauth2", "tls", "asan", packaged=True)


def test_generation_adds_packaged_cells_on_demand() -> None:
    plain = generate([V("6.4.33"), V("next")], _table, distros=("bookworm",))
    both = generate([V("6.4.33"), V("next")], _table, distros=("bookworm",), packaged=True)
    packaged = [c for c in both if c.packaged]
    assert not any(c.packaged for c in plain)
    assert [c.identifier.replace("bookworm+deb", "bookworm") for c in packaged] == [
        c.identifier for c in plain]
    assert len(group_by_build(both)) == len(group_by_build(plain))  # no extra builds


def test_build_grouping_shares_one_build_per_binary() -> None:
    cells = generate(VERSIONS, _table, distros=("bookworm", "trixie"), sanitizers=("asan",))
    groups = group_by_build(cells)
    assert len(groups) == 4 * 2 * 2  # 4 versions with cells x 2 distros x (plain, asan)
    for name, members in groups.items():
        assert {c.build_group for c in members} == {name}
        assert {(c.version, c.series, c.distro, c.sanitizer) for c in members} == {
            (members[0].version, members[0].series, members[0].distro, members[0].sanitizer)
        }
    assert sum(len(m) for m in groups.values()) == len(cells)


def test_generation_from_a_throwaway_series_table(tmp_path: Path) -> None:
    """cells_for reads the real series.toml format (patches/series.toml + per-series dirs)."""
    (tmp_path / "series.toml").write_text(
        '[[range]]\nseries = "tmp64"\nfirst = "6.4.30"\nlast = "6.4.33"\napply = "fuzz0"\n'
    )
    (tmp_path / "tmp64").mkdir()
    (tmp_path / "tmp64" / "0001-x.patch").write_text("Subject: [PATCH] x\n")
    (tmp_path / "tmp64" / "series.toml").write_text(
        'name = "tmp64"\nbase = "6.4.33"\ndescription = "t"\npatches = ["0001-x.patch"]\n'
    )
    cells = cells_for([V("6.4.29"), V("6.4.30"), V("6.4.33"), V("next")],
                      patches_dir=tmp_path, distros=("bookworm",))
    assert sorted(group_by_build(cells)) == [
        "6.4.30-tmp64-bookworm", "6.4.33-tmp64-bookworm", "next-native-bookworm"]


# -- selector -------------------------------------------------------------------------------

UNIVERSE = generate(VERSIONS, _table, distros=("bookworm", "bullseye"))


def ids(selected: list[Cell]) -> set[str]:
    return {c.identifier for c in selected}


def test_selector_glob() -> None:
    chosen = Selector.parse("6.4.*-*-bookworm-imap-*").select(UNIVERSE)
    assert chosen
    assert all(str(c.version).startswith("6.4.") and c.distro == "bookworm" and c.protocol == "imap"
               for c in chosen)
    # both xoauth2 and oauthbearer, both transports, and the daemon cell
    assert {c.mechanism for c in chosen} == set(MECHANISMS)
    assert any(c.daemon for c in chosen)
    expected = {c.identifier for c in UNIVERSE
                if str(c.version).startswith("6.4.") and c.distro == "bookworm"
                and c.protocol == "imap"}
    assert ids(chosen) == expected


def test_selector_comma_list_and_negation() -> None:
    sel = Selector.parse("next-*,6.4.33-*-bullseye-*,!*-daemon,!*-starttls")
    chosen = sel.select(UNIVERSE)
    assert chosen
    assert all(not c.daemon and c.transport == "tls" for c in chosen)
    assert {str(c.version) for c in chosen} == {"next", "6.4.33"}
    assert all(c.distro == "bullseye" for c in chosen if c.version == V("6.4.33"))


def test_selector_negation_only_means_everything_else() -> None:
    chosen = Selector.parse("!*-pop3-*").select(UNIVERSE)
    assert ids(chosen) == {c.identifier for c in UNIVERSE if c.protocol != "pop3"}


def test_selector_repeated_options_combine() -> None:
    sel = Selector.parse(["next-*", "!*-daemon"])
    assert sel.include == ("next-*",) and sel.exclude == ("*-daemon",)
    assert str(sel) == "next-*,!*-daemon"


def test_selector_empty_selects_all() -> None:
    assert Selector.parse(None).select(UNIVERSE) == UNIVERSE


def test_selector_pattern_matching_nothing_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"match no cell: 6\.4\.99-\*") as info:
        Selector.parse("next-*,6.4.99-*").select(UNIVERSE)
    assert "identifiers look like" in str(info.value)


def test_selector_excluding_everything_is_an_error() -> None:
    with pytest.raises(ConfigError, match="leaves no cell"):
        Selector.parse("next-*,!next-*").select(UNIVERSE)


def test_selector_bare_negation_is_an_error() -> None:
    with pytest.raises(ConfigError, match="empty negation"):
        Selector.parse("next-*,!")


def test_selector_is_case_sensitive_and_anchored() -> None:
    with pytest.raises(ConfigError):
        Selector.parse("NEXT-*").select(UNIVERSE)
    with pytest.raises(ConfigError):
        Selector.parse("bookworm").select(UNIVERSE)  # a glob must match the whole identifier


def test_variant_mention() -> None:
    assert Selector.parse("*+asan-*").mentions("asan")
    assert not Selector.parse("*-bookworm-*,!*+asan-*").mentions("asan")
    assert not Selector.parse("*+deb-*").mentions("asan")
    assert Selector.parse("*+deb-imap-*").mentions("deb")
    assert Selector.parse("*bookworm+*").mentions("deb") and Selector.parse("*+*").mentions("asan")


def test_generation_adds_long_token_and_dovecot_cells() -> None:
    cells = generate([V("6.4.33"), V("next")], _table, distros=("bookworm",),
                     servers=("mock", "dovecot"))
    ids = [c.identifier for c in cells]
    assert "6.4.33-oauth64-bookworm-imap-xoauth2-tls-longtoken" in ids
    assert "next-native-bookworm-imap-oauthbearer-tls-longtoken-dovecot" in ids
    assert "6.4.33-oauth64-bookworm-pop3-oauthbearer-tls-daemon-dovecot" in ids
    for protocol in ("imap", "pop3"):  # a temporary-failure cell per protocol and server
        assert f"6.4.33-oauth64-bookworm-{protocol}-oauthbearer-tls-tempfail" in ids
        assert f"next-native-bookworm-{protocol}-oauthbearer-tls-tempfail-dovecot" in ids
    mock = [c for c in cells if c.server == "mock"]
    assert len(cells) == 2 * len(mock) and mock == [
        c for c in generate([V("6.4.33"), V("next")], _table, distros=("bookworm",))]
    groups = group_by_build(cells)
    assert len(groups) == 2, "the servers share one build"
    for members in groups.values():  # each build's cells: the mock's, then Dovecot's
        servers = [c.server for c in members]
        assert servers == sorted(servers, key=("mock", "dovecot").index)
