"""At home for users of Ogilvie's fetchmail-oauth2.py (issue 11 §1): its flags, its
redirect_uri, its keys."""

from __future__ import annotations

import socket
import urllib.parse
import urllib.request

import pytest

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.tokens_cli import Account, popen_cli, run_cli, wait_for_line

REFRESHES = "token:refresh_token"


def test_auto_refresh_and_refresh_are_aliases(
    account: Account, provider: MockOAuthProvider
) -> None:
    account.seed()
    done = run_cli("-c", str(account.config), "--auto_refresh")
    assert done.returncode == 0, done.stderr
    assert provider.count(REFRESHES) == 1
    assert run_cli("--config_file", str(account.config), "--auto_refresh").returncode == 0
    assert provider.count(REFRESHES) == 1  # still fresh: like `refresh`
    forced = run_cli(f"--config_file={account.config}", "--refresh")
    assert forced.returncode == 0, forced.stderr
    assert provider.count(REFRESHES) == 2  # like `refresh --force`
    assert provider.is_active(account.access_file.read_text().strip())


def _complete_in_browser(proc_stderr: object, provider: MockOAuthProvider) -> str:
    """Follow the printed authorization URL as a browser would; returns its redirect_uri."""
    url, _ = wait_for_line(proc_stderr, provider.authorize_url)
    redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["redirect_uri"]
    with urllib.request.urlopen(url, timeout=30) as page:
        assert b"Authorization received" in page.read()
    return redirect


def test_obtain_refresh_token_file_is_authorize(
    account: Account, provider: MockOAuthProvider
) -> None:
    proc = popen_cli("-c", str(account.config), "--obtain_refresh_token_file")
    try:
        _complete_in_browser(proc.stderr, provider)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert provider.count("token:authorization_code") == 1
    assert provider.is_active(account.access_file.read_text().strip())


@pytest.mark.parametrize(
    ("flag", "instead"),
    [
        ("--generate_oauth2_token", "authorize"),
        ("--generate_oauth2_string", "sasl --show-token"),
        ("--test_imap_authentication", "check imaps://"),
        ("--test_smtp_authentication", "check submission://"),
    ],
)
def test_other_modes_name_the_new_command(account: Account, flag: str, instead: str) -> None:
    done = run_cli("-c", str(account.config), flag)
    assert done.returncode == 2
    assert f"fetchmail-oauth2 -c {account.config} {instead}" in done.stderr, done.stderr


def test_command_line_values_and_tokens(account: Account) -> None:
    done = run_cli("--client_id=abc", "--auto_refresh")
    assert done.returncode == 2 and "put `client_id = ...` in the config file" in done.stderr
    secret = run_cli("--refresh_token", "1/very-secret", "--generate_oauth2_token")
    assert secret.returncode == 2 and "never taken on the command line" in secret.stderr
    assert "very-secret" not in secret.stderr
    none = run_cli("-c", str(account.config), "--umask=0077")
    assert none.returncode == 2 and "0600" in none.stderr
    # without a classic flag, the new command line is untouched (check has --user too)
    assert run_cli("-c", str(account.config), "status").returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("template", ["http://127.0.0.1:{port}/cb", "http://localhost:{port}"])
def test_redirect_uri_port_and_path_are_honoured(
    account: Account, provider: MockOAuthProvider, template: str
) -> None:
    """A fixed port (ssh -L, an exact registered redirect): listened on and sent as written."""
    redirect_uri = template.format(port=_free_port())
    account.write_config(redirect_uri=redirect_uri)
    proc = popen_cli("-c", str(account.config), "authorize", "--no-browser")
    try:
        sent = _complete_in_browser(proc.stderr, provider)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert sent == redirect_uri
    assert provider.log[-1][1]["redirect_uri"] == redirect_uri  # the code exchange too


def test_busy_redirect_port_is_a_clear_error(account: Account) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        account.write_config(redirect_uri=f"http://127.0.0.1:{port}/")
        done = account.run("authorize", "--no-browser")
    assert done.returncode == 2 and f"port {port}" in done.stderr, done.stderr


def test_non_loopback_redirect_needs_the_manual_flow(account: Account) -> None:
    account.write_config(redirect_uri="https://example.com/cb")
    done = account.run("authorize", "--no-browser")
    assert done.returncode == 2 and "--flow manual" in done.stderr


@pytest.mark.parametrize("flow", ["loopback", "manual", "device"])
@pytest.mark.parametrize("uri", ["urn:ietf:wg:oauth:2.0:oob", "urn:ietf:wg:oauth:2.0:oob:auto"])
def test_out_of_band_redirect_is_refused_in_every_flow(
    account: Account, provider: MockOAuthProvider, flow: str, uri: str
) -> None:
    account.write_config(redirect_uri=uri)
    done = account.run("authorize", "--flow", flow, "--no-browser", input="")
    assert done.returncode == 2, done.stderr
    assert "Google removed it in 2022" in done.stderr and "redirect_uri" in done.stderr
    assert provider.count("token") == 0 and provider.count("device") == 0


def test_classic_keys_are_not_silently_accepted(
    account: Account, provider: MockOAuthProvider
) -> None:
    account.seed()
    account.write_config(umask="0077")
    done = account.run("refresh")
    assert done.returncode == 2 and "umask is not used" in done.stderr, done.stderr
    assert provider.count("token") == 0
    # imap_server and smtp_server are what `check` tries by default (see test_check)
    account.write_config(imap_server="127.0.0.1:1", smtp_server="127.0.0.1:1")
    tried = account.run("check")  # nothing listens on port 1: both fail, both are tried
    assert tried.returncode == 6, tried.stderr
    assert "imaps://127.0.0.1:1" in tried.stderr and "submission://127.0.0.1:1" in tried.stderr


def test_classic_config_file_works_once_the_provider_is_named(
    account: Account, provider: MockOAuthProvider
) -> None:
    """The classic file format: bare key=value lines, no comments, no spaces."""
    grant = account.seed()
    account.config.write_text(
        f"client_id=fetchmail-oauth2-test\nclient_secret=test-client-secret\n"
        f"refresh_token_file={account.refresh_file}\naccess_token_file={account.access_file}\n"
        f"max_age_sec=3000\nauth_url={provider.authorize_url}\ntoken_url={provider.token_url}\n"
        "scope=mail\n"
    )
    done = run_cli("-c", str(account.config), "--auto_refresh")
    assert done.returncode == 0, done.stderr
    assert account.refresh_file.read_text().strip() == grant["refresh_token"]
