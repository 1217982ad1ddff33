"""Debian's fetchmail (a real client) fetches everything byte-exact into an MDA over TLS."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.mockserver import Mailbox, TestCA
from tests.helpers.mailclients import PASSWORD, USER, ServerFactory
from tests.helpers.skips import skip_loudly


@pytest.fixture
def fetchmail() -> str:
    path = shutil.which("fetchmail")
    if path is None:
        skip_loudly("Debian's fetchmail binary is absent (apt-get install fetchmail)")
    assert path is not None
    return path


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_fetchmail_password_login_fetches_byte_exact(
    fetchmail: str,
    server: ServerFactory,
    ca: TestCA,
    mailbox: Mailbox,
    tmp_path: Path,
    protocol: str,
    tls: str,
) -> None:
    ctrl = server(protocol, tls=tls)
    expected = sorted(m.data for m in mailbox.snapshot())
    out = tmp_path / "delivered"
    out.mkdir()
    tls_options = "ssl sslcertck" if tls == "implicit" else "sslproto 'tls1.2+' sslcertck"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\nset invisible\n"  # invisible: no Received: header, so bytes compare
        f"poll localhost service {ctrl.port} protocol {protocol.upper()} auth password\n"
        f'  user "{USER}" password "{PASSWORD}"\n'
        f'  {tls_options} sslcertfile "{ca.ca_path}"\n'
        "  no rewrite no stripcr\n"
        f"  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n"
    )
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    result = subprocess.run(
        [fetchmail, "-f", str(rc), "-v", "--nodetach", "--pidfile", str(tmp_path / "pid")],
        capture_output=True,
        env=env,
        timeout=120,
    )
    log = result.stderr.decode(errors="replace") + result.stdout.decode(errors="replace")
    assert result.returncode == 0, log
    delivered = sorted(p.read_bytes() for p in out.iterdir())
    assert delivered == expected
    assert len(mailbox) == 0 and len(mailbox.expunged) == len(expected)  # fetchmail deleted all
    said = ctrl.transcripts[0].text()
    assert "TLS started" in said or tls == "implicit"
    assert PASSWORD not in said
