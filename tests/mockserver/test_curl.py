"""curl --oauth2-bearer against the mock: imap, imaps, pop3 (STLS), pop3s; byte-exact bodies."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness.mockserver import Mailbox, MailServerController, TestCA
from tests.helpers.mailclients import USER, ServerFactory
from tests.helpers.skips import skip_loudly

SCHEMES = {  # scheme -> (protocol, tls mode)
    "imap": ("imap", "starttls"),
    "imaps": ("imap", "implicit"),
    "pop3": ("pop3", "starttls"),
    "pop3s": ("pop3", "implicit"),
}


@pytest.fixture
def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        skip_loudly("curl is not installed (apt-get install curl)")
    assert path is not None
    return path


def fetch(
    curl: str, ctrl: MailServerController, scheme: str, n: int, token: str, ca: TestCA
) -> subprocess.CompletedProcess[bytes]:
    path = f"INBOX/;MAILINDEX={n}" if scheme.startswith("imap") else str(n)
    url = f"{scheme}://127.0.0.1:{ctrl.port}/{path}"
    return subprocess.run(
        [
            curl,
            "-sS",
            "--ssl-reqd",
            "--cacert",
            str(ca.ca_path),
            "--oauth2-bearer",
            token,
            "--user",
            f"{USER}:",
            url,
        ],
        capture_output=True,
        timeout=30,
    )


@pytest.mark.parametrize("mechs", [None, ("XOAUTH2",)], ids=["preferred", "xoauth2-only"])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_curl_fetches_byte_exact(
    curl: str,
    server: ServerFactory,
    ca: TestCA,
    mailbox: Mailbox,
    tokens: dict[str, str],
    scheme: str,
    mechs: tuple[str, ...] | None,
) -> None:
    protocol, tls = SCHEMES[scheme]
    ctrl = server(protocol, tls=tls, mechanisms=mechs)
    expected = mailbox.snapshot()
    for n in (1, 4, 7):
        result = fetch(curl, ctrl, scheme, n, tokens["good"], ca)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == expected[n - 1].data
    said = "\n".join(t.text() for t in ctrl.transcripts)
    used = "OAUTHBEARER" if mechs is None else "XOAUTH2"
    assert f"AUTHENTICATE {used}" in said or f"AUTH {used}" in said
    assert tokens["good"] not in said


@pytest.mark.parametrize("mechs", [None, ("XOAUTH2",)], ids=["preferred", "xoauth2-only"])
@pytest.mark.parametrize("scheme", ["imap", "pop3s"])
def test_curl_expired_token_is_refused(
    curl: str,
    server: ServerFactory,
    ca: TestCA,
    tokens: dict[str, str],
    scheme: str,
    mechs: tuple[str, ...] | None,
) -> None:
    protocol, tls = SCHEMES[scheme]
    ctrl = server(protocol, tls=tls, mechanisms=mechs)
    result = fetch(curl, ctrl, scheme, 1, tokens["expired"], ca)
    assert result.returncode == 67, result.stderr.decode()  # CURLE_LOGIN_DENIED
    ctrl.stop()  # the session is over and its transcript complete
    said = ctrl.transcripts[0].lines
    challenge = next(i for i, line in enumerate(said) if line.startswith("S: + eyJ"))
    if mechs is None:
        # OAUTHBEARER: curl answers the error challenge with AQ==, then gets NO / -ERR.
        assert said[challenge + 1] == "C: <redacted>"
        assert said[challenge + 2] == "-- auth failed: token not active"
        final = said[challenge + 3]
        assert "NO [AUTHENTICATIONFAILED]" in final or "-ERR [AUTH]" in final
    else:
        # XOAUTH2: curl 7.88 does not answer the error challenge; it hangs up.
        assert not [line for line in said[challenge + 1 :] if line.startswith(("C:", "S:"))]
