"""Provider refusals (issue 11 §3): a documented exit code, a remembered state, a message that
says what to do, and notify_cmd once on the transition."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from harness.mockserver.oauth_provider import MockOAuthProvider
from tests.helpers.tokens_cli import REPO, Account, run_cli

REFRESHES = "token:refresh_token"

CLASSES = [
    # error, exit code, state, words of the advice
    ("invalid_grant", 3, "reauth", "authorize"),
    ("interaction_required", 3, "reauth", "interactive sign-in"),
    ("login_required", 3, "reauth", "authorize"),
    ("consent_required", 3, "reauth", "consent"),
    ("invalid_scope", 8, "scope", "fix scope="),
    ("invalid_client", 9, "client", "Allow public client flows"),
    ("unauthorized_client", 9, "client", "tenant may need its admin"),
    ("invalid_request", 10, "refused", "refused the request"),
    ("some_new_error", 10, "refused", "refused the request"),
]


@pytest.mark.parametrize(("error", "code", "state", "advice"), CLASSES)
def test_each_refusal_has_its_exit_code_state_and_advice(
    account: Account,
    provider: MockOAuthProvider,
    error: str,
    code: int,
    state: str,
    advice: str,
) -> None:
    account.seed()
    assert account.run("refresh").returncode == 0
    provider.inject("token", "error", error=error, description="said the provider", count=2)
    done = account.run("refresh", "--force")
    assert done.returncode == code, done.stderr
    assert advice in done.stderr and "said the provider" in done.stderr
    assert f"-c {account.config}" in done.stderr  # the command to run names the config
    assert f"{state}:" in account.run("status").stdout
    calls = provider.count("token")
    again = account.run("refresh")  # cron's next run: remembered, not asked again
    assert again.returncode == code and provider.count("token") == calls
    forced = account.run("refresh", "--force")  # a person says "try again"
    assert forced.returncode == code and provider.count("token") == calls + 1
    assert account.run("refresh", "--force").returncode == 0  # the provider is happy again
    assert "active" in account.run("status").stdout


@pytest.mark.parametrize("error", ["temporarily_unavailable", "server_error"])
def test_transient_errors_are_not_remembered(
    account: Account, provider: MockOAuthProvider, error: str
) -> None:
    account.seed()
    assert account.run("refresh").returncode == 0
    provider.inject("token", "error", error=error, status=400)
    done = account.run("refresh", "--force")
    assert done.returncode == 4 and "old access token was kept" in done.stderr, done.stderr
    assert "active" in account.run("status").stdout


def test_fixed_client_config_is_tried_again_without_force(
    account: Account, provider: MockOAuthProvider
) -> None:
    account.seed()
    account.write_config(client_secret="wrong")
    assert account.run("refresh").returncode == 9
    calls = provider.count("token")
    assert account.run("refresh").returncode == 9 and provider.count("token") == calls
    account.write_config()  # the right secret again
    done = account.run("refresh")
    assert done.returncode == 0, done.stderr
    assert provider.count("token") == calls + 1


def _notify_recorder(account: Account) -> tuple[str, Path]:
    log = account.dir / "notified"
    script = account.dir / "record.py"
    script.write_text(
        "import os, json\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({k: v for k, v in os.environ.items()"
        " if k.startswith('FETCHMAIL_OAUTH2_')}) + '\\n')\n"
    )
    return f"{sys.executable} {script}", log


def test_notify_cmd_runs_once_on_the_transition(
    account: Account, provider: MockOAuthProvider
) -> None:
    import json

    command, log = _notify_recorder(account)
    account.write_config(notify_cmd=command)
    grant = account.seed()
    assert account.run("refresh").returncode == 0
    assert not log.exists()  # nothing to say while all is well
    provider.revoke(grant["refresh_token"])
    assert account.run("refresh", "--force").returncode == 3
    for _ in range(2):
        assert account.run("refresh").returncode == 3  # cron keeps running
    assert account.run("refresh", "--force").returncode == 3  # still the same state
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    sent = json.loads(lines[0])
    assert sent["FETCHMAIL_OAUTH2_ACCOUNT"] == "user@example.com"
    assert sent["FETCHMAIL_OAUTH2_STATE"] == "reauth"
    assert "invalid_grant" in sent["FETCHMAIL_OAUTH2_REASON"]
    assert sent["FETCHMAIL_OAUTH2_COMMAND"] == f"fetchmail-oauth2 -c {account.config} authorize"
    assert sent["FETCHMAIL_OAUTH2_CONFIG"] == str(account.config)
    assert grant["refresh_token"] not in lines[0]
    # after a new authorisation, a later refusal is a new transition
    provider.on_device_authorization(lambda code: provider.approve_device(code))
    assert account.run("authorize", "--flow", "device").returncode == 0
    provider.inject("token", "error", error="invalid_scope")
    assert account.run("refresh", "--force").returncode == 8
    assert len(log.read_text().splitlines()) == 2


def test_failing_notify_cmd_is_a_warning(account: Account, provider: MockOAuthProvider) -> None:
    account.write_config(notify_cmd="exit 7")
    grant = account.seed()
    provider.revoke(grant["refresh_token"])
    done = account.run("refresh")
    assert done.returncode == 3
    assert "warning: notify_cmd" in done.stderr and "exited 7" in done.stderr


def test_readme_notify_example_mails_the_local_user(
    account: Account, provider: MockOAuthProvider
) -> None:
    """The README's notify_cmd, with a stand-in for /usr/sbin/sendmail that keeps the mail."""
    readme = (REPO / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if ln.startswith("notify_cmd"))
    command = line.partition("=")[2].strip()
    assert "/usr/sbin/sendmail" in command
    fake = account.dir / "sendmail"
    mail = account.dir / "mail"
    fake.write_text(f'#!/bin/sh\n{{ echo "ARGV $*"; cat; }} > {mail}\n')
    fake.chmod(0o755)
    account.write_config(notify_cmd=command.replace("/usr/sbin/sendmail", str(fake)))
    grant = account.seed()
    provider.revoke(grant["refresh_token"])
    assert account.run("refresh").returncode == 3
    text = mail.read_text()
    me = os.popen("id -un").read().strip()
    assert text.startswith(f"ARGV {me}\n"), text
    assert re.search(r"^Subject: .*user@example\.com", text, re.M)
    assert "invalid_grant" in text and f"fetchmail-oauth2 -c {account.config} authorize" in text


def test_help_documents_every_exit_code() -> None:
    text = run_cli("--help").stdout
    for code in range(11):
        assert re.search(rf"^ {{0,2}}{code} ", text, re.M), code
    for state in ("reauth", "scope", "client", "refused"):
        assert f"[{state}" in text or f", {state}]" in text, state
