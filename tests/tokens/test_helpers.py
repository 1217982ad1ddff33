"""TOTP (RFC 6238 vectors), SASL strings, example units, --help: through the real CLI."""

from __future__ import annotations

import base64
import io
import sys

import pytest

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.tokens_cli import Account, run_cli
from tokens.cli import main

SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
# RFC 6238 appendix B: time -> (SHA1, SHA256, SHA512), 8 digits
VECTORS = {
    59: ("94287082", "46119246", "90693936"),
    1111111109: ("07081804", "68084774", "25091201"),
    1111111111: ("14050471", "67062674", "99943326"),
    1234567890: ("89005924", "91819424", "93441116"),
    2000000000: ("69279037", "90698825", "38618901"),
    20000000000: ("65353130", "77737706", "47863826"),
}


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_totp_rfc6238_vectors(
    algorithm: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """All RFC 6238 appendix B vectors through main(argv), the secret on stdin."""
    column = ("sha1", "sha256", "sha512").index(algorithm)
    secret = base64.b32encode(SEEDS[algorithm]).decode().rstrip("=").lower()
    for at, codes in VECTORS.items():
        # spaces and lower case, as authenticator apps show secrets
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{secret[:8]} {secret[8:]}\n"))
        argv = ["totp", "--digits", "8", "--algorithm", algorithm, "--time", str(at)]
        assert main(argv) == 0
        assert capsys.readouterr().out.strip() == codes[column], (algorithm, at)


def test_totp_subprocess_reads_stdin() -> None:
    secret = base64.b32encode(SEEDS["sha1"]).decode()
    done = run_cli("totp", "--digits", "8", "--time", "1111111109", input=secret + "\n")
    assert done.returncode == 0 and done.stdout.strip() == "07081804"


def test_totp_secret_formats_and_errors() -> None:
    hexed = run_cli(
        "totp",
        "--encoding",
        "hex",
        "--time",
        "59",
        "--digits",
        "8",
        input=SEEDS["sha1"].hex() + "\n",
    )
    assert hexed.stdout.strip() == "94287082"
    six = run_cli("totp", "--encoding", "ascii", "--time", "59", input="12345678901234567890\n")
    assert six.stdout.strip() == "287082"
    bad = run_cli("totp", input="not base32 !!\n")
    assert bad.returncode == 2 and "base32" in bad.stderr
    empty = run_cli("totp", input="")
    assert empty.returncode == 2 and "empty secret" in empty.stderr
    # there is no way to pass the secret as an argument
    argv = run_cli("totp", "GEZDGNBVGY3TQOJQ", input="")
    assert argv.returncode == 2 and "unrecognized arguments" in argv.stderr


def test_sasl_strings(account: Account, provider: MockOAuthProvider) -> None:
    account.seed()
    hidden = account.run("sasl")
    assert hidden.returncode == 0
    assert "user=user@example.com\\x01auth=Bearer <token>\\x01\\x01" in hidden.stdout
    assert "mock-at-" not in hidden.stdout + hidden.stderr  # no token without --show-token
    assert provider.count("token") == 0  # nothing fetched just to hide it

    shown = account.run("sasl", "--show-token")
    token = account.access_file.read_text().strip()
    b64 = next(line for line in shown.stdout.splitlines() if line.startswith("base64:"))
    decoded = base64.b64decode(b64.split()[1]).decode()
    assert decoded == f"user=user@example.com\x01auth=Bearer {token}\x01\x01"

    bearer = account.run(
        "sasl",
        "--mechanism",
        "oauthbearer",
        "--show-token",
        "--host",
        "imap.example.com",
        "--port",
        "993",
    )
    b64 = next(line for line in bearer.stdout.splitlines() if line.startswith("base64:"))
    assert base64.b64decode(b64.split()[1]).decode() == (
        f"n,a=user@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer {token}\x01\x01"
    )


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        ("systemd", ["OnUnitActiveSec=", "Type=oneshot", "--quiet", "refresh", "[Install]"]),
        ("cron", ["*/10 * * * *", "--quiet", "refresh", "@reboot"]),
        ("fetchmailrc", ["passwordfile", "auth xoauth2"]),
    ],
)
def test_examples(kind: str, needles: list[str]) -> None:
    done = run_cli("example", kind)
    assert done.returncode == 0
    for needle in needles:
        assert needle in done.stdout


def test_help_documents_exit_codes_and_keys() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for needle in (
        "exit codes",
        "re-authorisation needed",
        "client_secret_cmd",
        "authorize",
        "postfix",
        "totp",
    ):
        assert needle in done.stdout
