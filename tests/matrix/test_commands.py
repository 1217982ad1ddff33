"""`matrix --list [--json]` and `run` argument handling, through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main


@pytest.fixture(scope="module")
def upstream(fetchmail_upstream: str) -> str:
    return fetchmail_upstream


def test_list_json_for_ci(upstream: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--upstream", upstream, "--list", "--json",
                 "--select", "next-*", "--chunks", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cells"] and all(c.startswith("next-native-") for c in data["cells"])
    assert set(data["groups"]) == {"next-native-bookworm", "next-native-bullseye",
                                   "next-native-trixie"}
    assert len(data["include"]) == 2
    selected = ",".join(e["select"] for e in data["include"]).split(",")
    assert sorted(selected) == sorted(data["cells"])


def test_list_json_one_entry_per_build(upstream: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--upstream", upstream, "--list", "--json",
                 "--select", "next-*-bookworm-*,next-*-trixie-imap-*"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in data["include"]] == ["next-native-bookworm", "next-native-trixie"]


def test_list_plain(upstream: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--upstream", upstream, "--list", "--select",
                 "next-*-bookworm-imap-*,!*-daemon,!*-longtoken,!*-tempfail"]) == 0
    out = capsys.readouterr().out.split()
    assert out == ["#", "build", "next-native-bookworm",
                   "next-native-bookworm-imap-oauthbearer-tls",
                   "next-native-bookworm-imap-oauthbearer-starttls"]


def test_servers_axis(upstream: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--upstream", upstream, "--list", "--servers", "mock,dovecot",
                 "--select", "next-*-bookworm-imap-*-tls*,!*-daemon*"]) == 0
    out = capsys.readouterr().out.split()
    assert out == ["#", "build", "next-native-bookworm",
                   "next-native-bookworm-imap-oauthbearer-tls",
                   "next-native-bookworm-imap-oauthbearer-tls-tempfail",
                   "next-native-bookworm-imap-oauthbearer-tls-longtoken",
                   "next-native-bookworm-imap-oauthbearer-tls-dovecot",
                   "next-native-bookworm-imap-oauthbearer-tls-tempfail-dovecot",
                   "next-native-bookworm-imap-oauthbearer-tls-longtoken-dovecot"]
    assert main(["matrix", "--upstream", upstream, "--list", "--select", "*-dovecot"]) == 2
    assert "match no cell" in capsys.readouterr().err, "dovecot cells only with --servers"
    assert main(["matrix", "--upstream", upstream, "--list", "--servers", "exim"]) == 2
    assert "unknown server 'exim'" in capsys.readouterr().err


def test_list_packaged_cells_share_the_plain_build(upstream: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A '+deb' glob adds the packaged cells (no AddressSanitizer ones); one build serves both."""
    assert main(["matrix", "--upstream", upstream, "--list", "--select",
                 "next-*-bookworm-imap-*-tls,next-*-bookworm+deb-imap-*-tls"]) == 0
    out = capsys.readouterr().out.split()
    assert out == ["#", "build", "next-native-bookworm",
                   "next-native-bookworm-imap-oauthbearer-tls",
                   "next-native-bookworm+deb-imap-oauthbearer-tls"]
    assert main(["matrix", "--upstream", upstream, "--list", "--with-deb", "--select",
                 "next-*-trixie*-pop3-*"]) == 0
    listed = capsys.readouterr().out.split()
    assert "next-native-trixie+deb-pop3-oauthbearer-starttls" in listed
    assert not any("+asan" in c for c in listed)


def test_selector_without_match_is_exit_2(upstream: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--upstream", upstream, "--list", "--select", "9.9.9-*"]) == 2
    assert "match no cell: 9.9.9-*" in capsys.readouterr().err


def test_run_rejects_a_bad_identifier(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "6.4.33-oauth64-bookworm-imap-kerberos-tls"]) == 2
    assert "unknown mechanism 'kerberos'" in capsys.readouterr().err


def test_run_rejects_the_wrong_series(upstream: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--upstream", upstream, "next-oauth64-bookworm-imap-oauthbearer-tls"]) == 2
    assert "uses series 'native'" in capsys.readouterr().err


def test_bench_uses_the_remembered_upstream_in_its_fresh_cache(
    monkeypatch: pytest.MonkeyPatch, isolated_cache: object
) -> None:
    """bench swaps in a throwaway cache; the upstream `sources --upstream` remembered in the
    user's cache must still be the one it mirrors from."""
    from harness.matrix import backend
    from harness.source.mirror import remember_upstream

    remember_upstream("/srv/mirrors/fetchmail.git")
    seen: list[str | None] = []

    class Stop(Exception):
        pass

    class Recorder:
        def __init__(self, upstream: str | None = None, **_: object) -> None:
            seen.append(upstream)
            raise Stop

    monkeypatch.setattr(backend, "DockerBackend", Recorder)
    with pytest.raises(Stop):
        main(["bench"])
    assert seen == ["/srv/mirrors/fetchmail.git"]


def test_bench_reports_the_ccache_hit_rate_of_the_cold_builds(tmp_path: Path) -> None:
    from harness.commands.bench import _ccache_rate

    for name, counts in (("a", {"hits": 0, "misses": 50}), ("b", {"hits": 48, "misses": 2}),
                         ("c", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"ccache": counts}))
    assert _ccache_rate(tmp_path) == "48.0% (48 hits, 52 misses)"
    assert _ccache_rate(tmp_path / "c").startswith("n/a")
