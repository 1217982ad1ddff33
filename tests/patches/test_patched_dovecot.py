"""The server-side behaviours against the real judge: a private Dovecot 2.3 (oauth2 passdb,
RFC 7662 introspection at the mock provider) and 6.4.33 + oauth64 (plain and ASan+UBSan);
the single-poll checks also on one release of each derived line (6.5.0.beta7 + oauth65,
6.4.21 + oauth64early, 6.3.26 + oauth63; the matrix covers every release with the basic
cells).

- a Dovecot that offers only XOAUTH2 (as Microsoft 365): `auth oauthbearer` falls back to it;
- a refused token: OAUTHBEARER, then XOAUTH2, then nothing else;
- introspection unreachable: Dovecot's temporary failure is status 14, not AUTHFAIL, and the
  daemon mails no "your password is invalid" notice however often it polls.

This Dovecot speaks without TLS (ssl = no), so the rc files say `bearerwithouttls`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.mockserver.dovecot import DovecotInstance, dovecot_binary, free_port
from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.skips import FETCHMAIL_UPSTREAM, docker_available, skip_loudly
from tests.patches.accounts import MESSAGES, NOTICE, USER, delivered, rcfile, token_file, wait_for
from tests.patches.fetchmail_box import FetchmailBox

pytestmark = [pytest.mark.slow, pytest.mark.fetchmail_source, pytest.mark.docker]

PROTOCOLS = ["imap", "pop3"]
LINES = ["6.5.0.beta7", "6.4.21", "6.3.26"]  # one release per derived series


@pytest.fixture(scope="module")
def provider() -> Iterator[MockOAuthProvider]:
    if dovecot_binary() is None:
        skip_loudly("dovecot is not installed (fetchmail-harness setup --test-peers)")
    if os.geteuid() != 0:
        skip_loudly("the private dovecot instance needs root (it drops to nobody for mail)")
    with MockOAuthProvider() as the_provider:
        yield the_provider


def _dovecot(provider: MockOAuthProvider, *, mechanisms: tuple[str, ...] = ("xoauth2",
             "oauthbearer"), reachable: bool = True) -> DovecotInstance:
    cid, secret = provider.resource_credentials
    url = provider.introspection_url if reachable else f"http://127.0.0.1:{free_port()}/gone"
    return DovecotInstance(url, cid, secret, USER, MESSAGES, mechanisms=mechanisms)


def _port(dovecot: DovecotInstance, protocol: str) -> int:
    return dovecot.imap_port if protocol == "imap" else dovecot.pop3_port


def _sent(log: str) -> list[str]:
    """The bearer mechanisms fetchmail's -v trace shows it sending, in order."""
    return re.findall(r"(?:IMAP> \S+ AUTHENTICATE|POP3> AUTH) (OAUTHBEARER|XOAUTH2)", log)


def _password_commands(log: str) -> list[str]:
    return re.findall(r"(?:IMAP> \S+ LOGIN|POP3> (?:USER|PASS|APOP)|AUTHENTICATE PLAIN|AUTH PLAIN)",
                      log)


@pytest.fixture(scope="module", params=LINES)
def line_fetchmail(request: pytest.FixtureRequest, session_cache: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[FetchmailBox]:
    """A release of a derived line with its series, plain build (releases with advisories
    are fine here: the token is a test token, the server local)."""
    from harness.build.builder import BuildSpec, build
    from harness.build.engine import ensure_engine
    from harness.build.images import ensure_build_image
    from harness.series.table import series_for
    from harness.source.mirror import FetchmailSource
    from harness.source.versions import Version

    if FETCHMAIL_UPSTREAM is None:
        skip_loudly("no fetchmail source: set FETCHMAIL_UPSTREAM (see tests/helpers/skips.py)")
    if not docker_available():
        skip_loudly("no Docker engine to build and run fetchmail (run `fetchmail-harness setup`)")
    version = Version.parse(request.param)
    found = series_for(version)
    assert found is not None, version
    source = FetchmailSource(str(FETCHMAIL_UPSTREAM), cache=session_cache)
    result = build(BuildSpec(version, "bookworm", found[0].name), source=source,
                   cache=session_cache)
    image, _ = ensure_build_image(ensure_engine(), "bookworm")
    box = FetchmailBox.start(image.tag, result.binary, "plain",
                             [tmp_path_factory.getbasetemp(), result.binary.parent])
    try:
        assert f"This is fetchmail release {version}" in box.version()
        yield box
    finally:
        box.stop()


def _xoauth2_only(box: FetchmailBox, provider: MockOAuthProvider, home: Path,
                  protocol: str) -> None:
    """A Dovecot that offers only XOAUTH2 (as Microsoft 365): `auth oauthbearer` uses it."""
    token_file(home / "token", provider.mint_token(USER, scope="mail")["access_token"])
    with _dovecot(provider, mechanisms=("xoauth2",)) as dovecot:
        rc = rcfile(home, port=_port(dovecot, protocol), protocol=protocol, auth="oauthbearer",
                    tls="plain", server_options="bearerwithouttls")
        result = box.run(["-f", str(rc), "--nodetach", "-v"], home=home)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log + dovecot.log
    assert _sent(log) == ["XOAUTH2"], log
    assert delivered(home).count("Subject: test") == 2


def _refused(box: FetchmailBox, provider: MockOAuthProvider, home: Path, protocol: str) -> None:
    """A refused token with `auth any` + passwordfile: OAUTHBEARER, XOAUTH2, nothing else."""
    token_file(home / "token", "not-a-token")
    with _dovecot(provider) as dovecot:
        rc = rcfile(home, port=_port(dovecot, protocol), protocol=protocol, auth="any",
                    tls="plain", server_options="bearerwithouttls")
        result = box.run(["-f", str(rc), "--nodetach", "-v"], home=home)
    log = result.stdout + result.stderr
    assert result.returncode == 3, log
    assert _sent(log) == ["OAUTHBEARER", "XOAUTH2"], log
    assert _password_commands(log) == [], log
    assert "invalid_token" in log and '"status":"401"' in log, log


def _temporary_once(box: FetchmailBox, rc: Path, home: Path, protocol: str,
                    dovecot: DovecotInstance) -> None:
    """Introspection unreachable: Dovecot's temporary failure is status 14, not AUTHFAIL."""
    once = box.run(["-f", str(rc), "--nodetach", "-v"], home=home)
    log = once.stdout + once.stderr
    assert once.returncode == 14, log + dovecot.log
    assert ("NO [UNAVAILABLE]" if protocol == "imap" else "-ERR [SYS/TEMP]") in log, log
    assert "temporary server failure" in log and "Authorization failure" not in log, log


def _unreachable(provider: MockOAuthProvider, home: Path, protocol: str
                 ) -> tuple[DovecotInstance, Path]:
    token_file(home / "token", provider.mint_token(USER, scope="mail")["access_token"])
    dovecot = _dovecot(provider, reachable=False)
    rc = rcfile(home, port=_port(dovecot, protocol), protocol=protocol, auth="oauthbearer",
                tls="plain", server_options="bearerwithouttls")
    return dovecot, rc


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_xoauth2_only_dovecot(patched_fetchmail: FetchmailBox, provider: MockOAuthProvider,
                              home: Path, protocol: str) -> None:
    _xoauth2_only(patched_fetchmail, provider, home, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_refused_token_at_dovecot(patched_fetchmail: FetchmailBox, provider: MockOAuthProvider,
                                  home: Path, protocol: str) -> None:
    _refused(patched_fetchmail, provider, home, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_line_at_dovecot(line_fetchmail: FetchmailBox, provider: MockOAuthProvider,
                              tmp_path: Path, protocol: str) -> None:
    """The three server-side behaviours on one release of each derived line."""
    homes = []
    for name in ("xoauth2-only", "refused", "unavailable"):
        homes.append(tmp_path / name)
        homes[-1].mkdir(mode=0o700)
    _xoauth2_only(line_fetchmail, provider, homes[0], protocol)
    _refused(line_fetchmail, provider, homes[1], protocol)
    dovecot, rc = _unreachable(provider, homes[2], protocol)
    with dovecot:
        _temporary_once(line_fetchmail, rc, homes[2], protocol, dovecot)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unreachable_introspection_is_temporary(
        patched_fetchmail: FetchmailBox, provider: MockOAuthProvider, home: Path,
        protocol: str) -> None:
    dovecot, rc = _unreachable(provider, home, protocol)
    with dovecot:
        _temporary_once(patched_fetchmail, rc, home, protocol, dovecot)

        # a daemon polling on: more failed polls than the three that trigger a notice mail
        daemon = patched_fetchmail.popen(["-f", str(rc), "-d", "1", "-N"], home=home)
        assert daemon.stdout is not None
        stdout = daemon.stdout
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")),
                                  daemon=True)
        reader.start()
        try:
            assert wait_for(lambda: "".join(lines).count("temporary server failure") >= 5,
                            120), "".join(lines)
        finally:
            patched_fetchmail.quit(home)
            daemon.wait(timeout=60)
            reader.join(timeout=30)
    assert NOTICE not in delivered(home), delivered(home)
    assert "Authorization failure" not in "".join(lines)
