"""Real cells: fetchmail built in a container, run against the mock servers (slow, docker)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cell.model import Cell
from harness.cell.result import CellResult
from harness.cell.run import run_cell
from harness.matrix.backend import DockerBackend
from harness.matrix.runner import ResultCache, run_matrix
from harness.series.table import series_for
from harness.source.versions import Version
from tests.helpers.skips import skip_loudly

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.fetchmail_source]


def _run(backend: DockerBackend, ident: str, tmp_path: Path) -> CellResult:
    cell = Cell.parse(ident)
    backend.check_cell(cell)
    built = backend.build(cell)
    assert backend.build_key(cell) == built.key  # result-cache keys are computed up front
    return backend.run(cell, built, tmp_path / f"{ident}.log")


def _explain(result: CellResult) -> str:
    return f"{result.outcome}: {result.reason}\n" + Path(result.log or "/dev/null").read_text()


def test_next_native_imap_cell_passes(backend: DockerBackend, tmp_path: Path) -> None:
    result = _run(backend, "next-native-bookworm-imap-oauthbearer-tls", tmp_path)
    assert result.outcome == "pass", _explain(result)
    assert any("byte-exact" in c for c in result.checks)
    assert any("AUTHENTICATE OAUTHBEARER" in c for c in result.checks)


def test_next_native_pop3_starttls_keep_cell_passes(backend: DockerBackend,
                                                    tmp_path: Path) -> None:
    result = _run(backend, "next-native-bookworm-pop3-oauthbearer-starttls", tmp_path)
    assert result.outcome == "pass", _explain(result)
    assert any(c.startswith("keep:") for c in result.checks)
    log = Path(result.log or "").read_text()
    assert "C: STLS" in log


def test_wrong_rc_keyword_is_a_failure_not_a_pass(backend: DockerBackend,
                                                  tmp_path: Path) -> None:
    """fetchmail 7 has no `auth xoauth2`: running a patched-6.4 cell with it must fail."""
    native = backend.build(Cell.parse("next-native-bookworm-imap-oauthbearer-tls"))
    cell = Cell.parse("6.4.33-oauth64-bookworm-imap-xoauth2-tls")
    result = run_cell(cell, Path(native.binary), backend.image("bookworm"), backend.client,
                      tmp_path / "wrong.log")
    assert result.outcome == "fail"
    assert "fetchmail exited" in result.reason


def _patched_cell(fetchmail_upstream: str, rest: str) -> str:
    found = series_for(Version.parse("6.4.33"))
    if found is None:
        skip_loudly("no patch series covers 6.4.33 yet (patches/series.toml)")
    assert found is not None
    return f"6.4.33-{found[0].name}-bookworm-{rest}"


@pytest.mark.parametrize("rest", ["imap-xoauth2-tls", "pop3-oauthbearer-starttls"])
def test_patched_6_4_33_cell_passes(backend: DockerBackend, fetchmail_upstream: str,
                                    tmp_path: Path, rest: str) -> None:
    result = _run(backend, _patched_cell(fetchmail_upstream, rest), tmp_path)
    assert result.outcome == "pass", _explain(result)


def test_patched_6_4_33_token_rotation_daemon(backend: DockerBackend, fetchmail_upstream: str,
                                              tmp_path: Path) -> None:
    result = _run(backend, _patched_cell(fetchmail_upstream, "imap-oauthbearer-tls-daemon"),
                  tmp_path)
    assert result.outcome == "pass", _explain(result)
    assert any("rotated" in c for c in result.checks)


def test_patched_6_4_33_temporary_failure(backend: DockerBackend, fetchmail_upstream: str,
                                          tmp_path: Path) -> None:
    """The mock cannot check the token (its provider answers 503): a busy server, exit 14."""
    result = _run(backend, _patched_cell(fetchmail_upstream, "pop3-oauthbearer-tls-tempfail"),
                  tmp_path)
    assert result.outcome == "pass", _explain(result)
    assert any("(exit 14), not a refused login" in c for c in result.checks)
    assert "mailbox untouched" in result.checks


def test_matrix_runs_cells_in_parallel_and_caches(backend: DockerBackend,
                                                   tmp_path: Path) -> None:
    cells = [Cell.parse("next-native-bookworm-imap-oauthbearer-starttls"),
             Cell.parse("next-native-bookworm-pop3-oauthbearer-tls")]
    cache = ResultCache(tmp_path / "results")
    first = run_matrix(cells, backend, jobs=2, cache=cache, log_dir=tmp_path / "logs")
    assert first.ok, [(_r.cell, _r.reason) for _r in first.results]
    second = run_matrix(cells, backend, jobs=2, cache=cache, log_dir=tmp_path / "logs2")
    assert all(r.cached and r.outcome == "pass" for r in second.results)


def test_run_command_verdict_and_cache(backend: DockerBackend, fetchmail_upstream: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    ident = "next-native-bookworm-pop3-oauthbearer-tls"
    assert main(["run", "--upstream", fetchmail_upstream, ident]) == 0
    first = capsys.readouterr().out
    assert f"PASS {ident}" in first and "(cached result)" not in first
    assert "ok  fetchmail exited 0" in first
    assert main(["run", "--upstream", fetchmail_upstream, ident]) == 0
    assert "(cached result)" in capsys.readouterr().out


def test_packaged_cells_run_the_fetchmail_apt_installed(backend: DockerBackend,
                                                        fetchmail_upstream: str,
                                                        tmp_path: Path) -> None:
    """DISTRO+deb: the build's .deb installed with apt in the base image, run from
    /usr/bin/fetchmail; the plain cell of the same build runs the build tree's binary."""
    plain = _patched_cell(fetchmail_upstream, "pop3-xoauth2-tls")
    packaged = [plain.replace("-bookworm-", "-bookworm+deb-"),
                _patched_cell(fetchmail_upstream, "imap-oauthbearer-starttls").replace(
                    "-bookworm-", "-bookworm+deb-")]
    cells = [Cell.parse(c) for c in (plain, *packaged)]
    run = run_matrix(cells, backend, jobs=2, cache=None, log_dir=tmp_path / "logs")
    assert run.ok, [(r.cell, r.reason) for r in run.results]
    assert len(run.builds) == 1  # one build serves the plain and the packaged cells
    logs = {r.identifier: Path(r.log or "").read_text() for r in run.results}
    images = {re.search(r"^image (fmh-installed:\S+)$", logs[c], re.M)[1]  # type: ignore[index]
              for c in packaged if "\nimage fmh-installed:" in logs[c]}
    for tag in images:  # made by this test: not left behind
        backend.client.images.remove(tag, force=True)
    assert all("binary /usr/bin/fetchmail\nimage fmh-installed:bookworm-" in logs[c]
               for c in packaged)
    assert len(images) == 1  # one image per package, shared by its cells
    assert "binary /usr/bin/fetchmail" not in logs[plain]
