"""`fetchmail-harness serve` as a user runs it: real CLI process, real client, Ctrl-C."""

from __future__ import annotations

import imaplib
import re
import signal
import smtplib
import ssl
import subprocess
import sys
from pathlib import Path

from harness.mockserver import generate_message
from tests.helpers.tokens_cli import run_cli


def test_serve_prints_details_and_serves_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "serve",
            "--protocol",
            "all",
            "--tls",
            "starttls",
            "--generate",
            "3",
            "--size",
            "1500",
            "--workdir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith("serving"):
                break
        text = "".join(out)
        found = re.search(r"IMAP \(starttls, profile dovecot\): 127\.0\.0\.1:(\d+)", text)
        assert found, text
        port = int(found[1])
        token_file = Path(re.search(r"token file: (\S+)", text)[1])  # type: ignore[index]
        ca = re.search(r"CA certificate .*: (\S+)", text)[1]  # type: ignore[index]
        assert "auth oauthbearer" in text and f'passwordfile "{token_file}"' in text
        token = token_file.read_text().strip()
        client = imaplib.IMAP4("127.0.0.1", port)
        client.starttls(ssl_context=ssl.create_default_context(cafile=ca))
        user = "user@example.com"
        client.authenticate(
            "XOAUTH2", lambda _: f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
        )
        client.select("INBOX")
        _, data = client.fetch("2", "(RFC822)")
        assert next(d for d in data if isinstance(d, tuple))[1] == generate_message(2, 1500)
        client.logout()
        found = re.search(r"SMTP submission \(starttls, profile dovecot\): [\d.]+:(\d+)", text)
        assert found, text
        assert "curl smtp://localhost:" in text and "--oauth2-bearer" in text
        # the account config it wrote: the refresher gets a new token the servers accept,
        # and postfix's map job (`fetchmail-oauth2 postfix`) would relay to its SMTP port
        config = Path(re.search(r"fetchmail-oauth2 config \(-c\): (\S+)", text)[1])  # type: ignore[index]
        assert f"postfix_relay = [127.0.0.1]:{found[1]}\n" in config.read_text()
        assert config.stat().st_mode & 0o777 == 0o600
        refreshed = run_cli("-c", str(config), "refresh")
        assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
        fresh = token_file.read_text().strip()
        assert fresh != token
        smtp = smtplib.SMTP("127.0.0.1", int(found[1]))
        smtp.starttls(context=ssl.create_default_context(cafile=ca))
        smtp.ehlo()
        code, _ = smtp.auth(
            "XOAUTH2", lambda c=None: f"user={user}\x01auth=Bearer {fresh}\x01\x01"
        )
        assert code == 235
        smtp.sendmail(user, ["bob@example.org"], b"Subject: hi\r\n\r\nthere\r\n")
        smtp.quit()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert proc.returncode == 0
    assert proc.stdout.read().strip().endswith("SMTP accepted 1 message(s)")
