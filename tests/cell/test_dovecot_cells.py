"""Cells against real Dovecot 2.3 (`-dovecot`): a representative slice; the whole server axis
belongs to `fetchmail-harness matrix --servers mock,dovecot` (slow, docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cell.model import Cell
from harness.cell.result import CellResult
from harness.matrix.backend import DockerBackend
from harness.series.table import series_for
from harness.source.versions import Version
from tests.helpers.skips import skip_loudly

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.fetchmail_source]


def _run(backend: DockerBackend, rest: str, tmp_path: Path,
         version: str = "6.4.33") -> CellResult:
    if version == "next":
        series = "native"
    else:
        found = series_for(Version.parse(version))
        if found is None:
            skip_loudly(f"no patch series covers {version} (patches/series.toml)")
        assert found is not None
        series = found[0].name
    cell = Cell.parse(f"{version}-{series}-bookworm-{rest}")
    assert cell.server == "dovecot"
    built = backend.build(cell)
    result = backend.run(cell, built, tmp_path / f"{cell.identifier}.log")
    result.reason += "\n" + Path(result.log or "/dev/null").read_text()[-3000:]
    return result


def test_imap_xoauth2_against_dovecot(backend: DockerBackend, tmp_path: Path) -> None:
    result = _run(backend, "imap-xoauth2-tls-dovecot", tmp_path)
    assert result.outcome == "pass", result.reason
    assert "every message deleted from the maildir" in result.checks
    assert "Dovecot logged 1 XOAUTH2 login(s)" in result.checks


def test_pop3_starttls_keep_against_dovecot(backend: DockerBackend, tmp_path: Path) -> None:
    result = _run(backend, "pop3-oauthbearer-starttls-dovecot", tmp_path)
    assert result.outcome == "pass", result.reason
    assert "keep: every message left in the maildir" in result.checks


def test_token_rotation_daemon_against_dovecot(backend: DockerBackend, tmp_path: Path) -> None:
    """The expired token's error challenge is answered %x01, as Dovecot's auth log shows."""
    result = _run(backend, "imap-oauthbearer-tls-daemon-dovecot", tmp_path)
    assert result.outcome == "pass", result.reason
    assert any("error challenge(s) answered" in c for c in result.checks)
    assert any("rotated" in c for c in result.checks)


def test_long_token_fails_cleanly_on_dovecot(backend: DockerBackend, tmp_path: Path) -> None:
    result = _run(backend, "imap-xoauth2-tls-longtoken-dovecot", tmp_path)
    assert result.outcome == "pass", result.reason
    assert any("8192-byte SASL limit" in c for c in result.checks)
    assert "maildir untouched" in result.checks


def test_temporary_failure_against_dovecot(backend: DockerBackend, tmp_path: Path) -> None:
    """Introspection answers 503: Dovecot says NO [UNAVAILABLE] (its auth log: temp_fail),
    and the patched fetchmail reports a busy server (14), not a refused login (3)."""
    result = _run(backend, "imap-oauthbearer-tls-tempfail-dovecot", tmp_path)
    assert result.outcome == "pass", result.reason
    assert any("(exit 14), not a refused login" in c for c in result.checks)
    assert "maildir untouched" in result.checks


def test_dovecot_log_catches_fetchmail_7s_empty_answer(backend: DockerBackend,
                                                        tmp_path: Path) -> None:
    """Upstream fetchmail 7 answers the OAUTHBEARER error challenge with an empty line: Dovecot
    says NO either way, its auth log tells the two apart."""
    result = _run(backend, "imap-oauthbearer-tls-daemon-dovecot", tmp_path, version="next")
    assert result.outcome == "fail"
    assert "OAUTHBEARER answered '', not 'AQ=='" in result.reason
