"""`authorize`: loopback redirect, manual paste, device code, all against the mock provider."""

from __future__ import annotations

import stat
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness.mockserver.oauth_provider import DEVICE_GRANT, MockOAuthProvider
from tests.helpers.tokens_cli import Account, cli_cmd, cli_env, popen_cli, wait_for_line


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _location(authorize_url: str) -> str:
    """What the browser would be redirected to, without following it."""
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(authorize_url, timeout=10)
    assert info.value.code == 302
    return str(info.value.headers["Location"])


def _assert_authorised(account: Account, provider: MockOAuthProvider, user: str) -> None:
    refresh = account.refresh_file.read_text()
    access = account.access_file.read_text()
    assert refresh.endswith("\n") and access.endswith("\n") and access.count("\n") == 1
    assert stat.S_IMODE(account.refresh_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(account.access_file.stat().st_mode) == 0o600
    assert provider.is_active(access.strip())
    assert (
        provider.handle_introspect({"token": access.strip()}, provider.resource_credentials)[
            "username"
        ]
        == user
    )


def _authorize_url(proc_stderr: object, provider: MockOAuthProvider) -> str:
    url, _ = wait_for_line(proc_stderr, provider.authorize_url)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 16 and query["response_type"] == "code"
    return url


@pytest.mark.parametrize(
    ("redirect_uri", "host", "path"),
    [
        (None, "127.0.0.1", "/"),
        ("http://[::1]/cb", "::1", "/cb"),
        ("http://localhost", "localhost", ""),
    ],
)
def test_loopback_flow(
    account: Account, provider: MockOAuthProvider, redirect_uri: str | None, host: str, path: str
) -> None:
    account.write_config(user="alice@example.com", redirect_uri=redirect_uri)
    proc = popen_cli("-c", str(account.config), "authorize", "--flow", "loopback", "--no-browser")
    try:
        url = _authorize_url(proc.stderr, provider)
        redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["redirect_uri"]
        parts = urllib.parse.urlsplit(redirect)
        assert (parts.hostname, parts.path) == (host, path) and parts.port
        # a stray request (favicon) first: answered 404, the listener keeps waiting
        with pytest.raises(urllib.error.HTTPError) as stray:
            urllib.request.urlopen(parts._replace(path="/favicon.ico").geturl(), timeout=10)
        assert stray.value.code == 404
        # the "browser": GET /authorize, follow the redirect to the loopback listener
        with urllib.request.urlopen(url, timeout=30) as page:
            assert b"Authorization received" in page.read()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert provider.count("token:authorization_code") == 1
    _assert_authorised(account, provider, "alice@example.com")  # login_hint was passed
    assert out == ""  # no token on stdout
    # the listener served one authorization response and is gone
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(redirect, timeout=5)


def test_loopback_rejects_wrong_state(account: Account, provider: MockOAuthProvider) -> None:
    proc = popen_cli("-c", str(account.config), "authorize", "--no-browser")
    try:
        url = _authorize_url(proc.stderr, provider)
        redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["redirect_uri"]
        with pytest.raises(urllib.error.HTTPError) as forged:
            urllib.request.urlopen(redirect + "?code=stolen&state=forged", timeout=10)
        assert forged.value.code == 400
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 5
    assert "state mismatch" in err
    assert not account.refresh_file.exists()
    assert provider.count("token") == 0


def test_loopback_provider_error(account: Account, provider: MockOAuthProvider) -> None:
    provider.authorize_error = "access_denied"
    proc = popen_cli("-c", str(account.config), "authorize", "--no-browser")
    try:
        url = _authorize_url(proc.stderr, provider)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url, timeout=30)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 5 and "access_denied" in err
    assert "empty" in account.run("status").stdout  # Pending was rolled back


@pytest.mark.parametrize("field", ["code", "approvalCode"])
def test_manual_paste(account: Account, provider: MockOAuthProvider, field: str) -> None:
    account.write_config(redirect_uri="http://localhost/done")
    proc = popen_cli("-c", str(account.config), "authorize", "--flow", "manual")
    try:
        url = _authorize_url(proc.stderr, provider)
        location = _location(url)
        assert location.startswith("http://localhost/done?")
        pasted = location.replace("code=", f"{field}=", 1) if field != "code" else location
        _, err = proc.communicate(pasted + "\n", timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    _assert_authorised(account, provider, "user@example.com")


def test_manual_paste_checks_state(account: Account, provider: MockOAuthProvider) -> None:
    proc = popen_cli("-c", str(account.config), "authorize", "--flow", "manual")
    try:
        url = _authorize_url(proc.stderr, provider)
        location = _location(url)
        forged = urllib.parse.urlsplit(location)._replace(query="code=abc&state=other").geturl()
        _, err = proc.communicate(forged + "\n", timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 5 and "state mismatch" in err
    assert not account.refresh_file.exists()


def test_device_flow_pending_and_slow_down(account: Account, provider: MockOAuthProvider) -> None:
    def on_code(user_code: str) -> None:
        provider.script_device(user_code, "authorization_pending", "slow_down")
        provider.approve_device(user_code, "dev@example.com")

    provider.on_device_authorization(on_code)
    done = account.run("authorize", "--flow", "device")
    assert done.returncode == 0, done.stderr
    assert "enter the code" in done.stderr
    _assert_authorised(account, provider, "dev@example.com")
    # pending, slow_down, success: the provider saw no poll earlier than the interval
    # allowed (it would answer slow_down and the count would grow)
    assert provider.count(f"token:{DEVICE_GRANT}") == 3
    assert provider.count("device:too_fast") == 0


@pytest.mark.parametrize(("action", "message"), [("deny", "denied"), ("expire", "expired")])
def test_device_flow_failures(
    account: Account, provider: MockOAuthProvider, action: str, message: str
) -> None:
    def on_code(user_code: str) -> None:
        if action == "deny":
            provider.deny_device(user_code)
        else:
            provider.expire_device(user_code)

    provider.on_device_authorization(on_code)
    done = account.run("authorize", "--flow", "device")
    assert done.returncode == 5
    assert message in done.stderr
    assert not account.refresh_file.exists()


def test_loopback_opens_browser(account: Account, provider: MockOAuthProvider) -> None:
    """With a display, $BROWSER is started (in the background) and can complete the flow."""
    browser = account.dir / "browser.py"
    visited = account.dir / "visited"
    browser.write_text(
        "import sys, urllib.request\n"
        f"open({str(visited)!r}, 'w').write(sys.argv[1])\n"
        "urllib.request.urlopen(sys.argv[1], timeout=30).read()\n"
    )
    env = cli_env()
    env.update(DISPLAY=":fake", BROWSER=f"{sys.executable} {browser} %s")
    done = subprocess.run(
        cli_cmd("-c", str(account.config), "authorize"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert visited.read_text().startswith(provider.authorize_url)
    assert visited.read_text() in done.stderr  # the URL is printed even so
    _assert_authorised(account, provider, "user@example.com")


def test_reauthorisation_after_revocation(account: Account, provider: MockOAuthProvider) -> None:
    grant = account.seed()
    assert account.run("refresh").returncode == 0
    provider.revoke(grant["refresh_token"])
    assert account.run("refresh", "--force").returncode == 3
    assert "revoked" in account.run("status").stdout
    provider.on_device_authorization(lambda code: provider.approve_device(code))
    done = account.run("authorize", "--flow", "device")
    assert done.returncode == 0, done.stderr
    assert account.refresh_file.read_text().strip() != grant["refresh_token"]
    assert "active" in account.run("status").stdout
    assert account.run("refresh", "--force").returncode == 0
    _assert_authorised(account, provider, "user@example.com")
