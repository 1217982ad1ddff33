"""Config files: presets, errors naming the line, permissions, client_secret_cmd, http policy."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.mockserver.oauth_provider import (
    DEFAULT_CLIENT_SECRET,
    PUBLIC_CLIENT_ID,
    MockOAuthProvider,
)
from tests.helpers.tokens_cli import Account, run_cli
from tokens.config import MS_SCOPES, load_config
from tokens.errors import ConfigError


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


BASE = "client_id=x\nrefresh_token_file=r\naccess_token_file=a\n"


def test_microsoft_preset_and_tenant(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path / "c", BASE + "provider=microsoft\ntenant=consumers\n"))
    assert cfg.token_url == "https://login.microsoftonline.com/consumers/oauth2/v2.0/token"
    assert cfg.device_auth_url is not None and cfg.device_auth_url.endswith("/devicecode")
    assert cfg.scope == MS_SCOPES and "offline_access" in cfg.scope
    assert "https://outlook.office.com/SMTP.Send" in cfg.scope
    assert cfg.refresh_token_file == tmp_path / "r"  # relative to the config file
    guid = "0a1b2c3d-0000-4000-8000-123456789abc"
    cfg = load_config(_write(tmp_path / "c", BASE + f"provider=microsoft\ntenant={guid}\n"))
    assert f"/{guid}/" in cfg.auth_url
    cfg = load_config(_write(tmp_path / "c", BASE + "provider=microsoft\n"))
    assert "/common/" in cfg.auth_url


def test_google_preset_with_override(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path / "c", BASE + "provider=google\nscope=custom\n"))
    assert cfg.token_url == "https://oauth2.googleapis.com/token"
    assert cfg.scope == "custom"
    assert cfg.auth_params == {"access_type": "offline", "prompt": "consent"}
    default = load_config(_write(tmp_path / "d", BASE + "provider=google\n"))
    assert default.scope == "https://mail.google.com/"
    assert default.relay == "[smtp.gmail.com]:587"  # for postfix_key accounts
    assert default.postfix_relay is None and not default.in_postfix_map


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (BASE + "# ok\nclient_secrte=x\n", ":5: unknown key 'client_secrte' (did you mean"),
        (BASE + "just words\n", ":4: expected `key = value`"),
        (BASE + "client_id=y\n", ":4: 'client_id' given twice (first on line 1)"),
        (
            "client_id=x\naccess_token_file=a\nprovider=google\n",
            "missing required key 'refresh_token_file'",
        ),
        (BASE, "missing required key 'auth_url'"),
        (BASE + "provider=yahoo\n", ":4: provider must be"),
        (BASE + "provider=microsoft\ntenant=bad tenant!\n", ":5: tenant must be"),
        (BASE + "provider=google\nmax_age_sec=soon\n", ":5: max_age_sec must be a number"),
        (BASE + "provider=google\nclient_secret=a\nclient_secret_cmd=b\n", "not both"),
        (BASE + "provider=google\nclient_auth=digest\n", ":5: client_auth must be post or basic"),
        (BASE + "provider=google\nclient_auth=basic\n", ":5: client_auth=basic needs"),
        (BASE + "provider=google\nclient_secret=\nclient_auth=basic\n", ":6: client_auth=basic"),
    ],
)
def test_config_errors_name_the_line(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path / "bad.conf", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)
    done = run_cli("-c", str(path), "refresh")  # the CLI says the same, exit 2
    assert done.returncode == 2 and needle in done.stderr


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_config_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "c", BASE + "provider=google\n", mode)
    done = run_cli("-c", str(path), "status")
    assert done.returncode == 2
    assert f"chmod 600 {path}" in done.stderr


def test_plain_http_to_remote_host_is_refused(account: Account) -> None:
    account.seed()
    account.write_config(token_url="http://oauth.example.com/token")
    done = account.run("refresh")
    assert done.returncode == 2
    assert "refusing plain http:// to remote host 'oauth.example.com'" in done.stderr


def test_client_secret_cmd(account: Account, provider: MockOAuthProvider) -> None:
    script = account.dir / "secret.py"
    script.write_text(f"print({DEFAULT_CLIENT_SECRET!r})\n")
    account.write_config(client_secret=None, client_secret_cmd=f"{sys.executable} {script}")
    account.seed()
    done = account.run("refresh")
    assert done.returncode == 0, done.stderr
    assert provider.count("token:refresh_token") == 1
    # a wrong secret is the provider's invalid_client: not a re-authorisation case
    script.write_text("print('wrong')\n")
    wrong = account.run("refresh", "--force")
    assert wrong.returncode == 9 and "invalid_client" in wrong.stderr
    failing = account.dir / "fail.py"
    failing.write_text("import sys; sys.exit(3)\n")
    account.write_config(client_secret=None, client_secret_cmd=f"{sys.executable} {failing}")
    broken = account.run("refresh", "--force")
    assert broken.returncode == 2 and "exited 3" in broken.stderr


def test_public_client_without_secret(account: Account, provider: MockOAuthProvider) -> None:
    account.write_config(client_id=PUBLIC_CLIENT_ID, client_secret=None)
    grant = provider.mint_token(client_id=PUBLIC_CLIENT_ID)
    account.refresh_file.write_text(grant["refresh_token"] + "\n")
    os.chmod(account.refresh_file, 0o600)
    done = account.run("refresh")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("secret", ["plain-secret", "s p:ä+/%&="])
def test_client_secret_basic(account: Account, provider: MockOAuthProvider, secret: str) -> None:
    """client_auth=basic sends the secret only in an Authorization header (RFC 6749 2.3.1,
    form-urlencoded then base64), which a provider that insists on it accepts."""
    provider.register_client("basic-only", secret, auth_method="basic")
    account.write_config(client_id="basic-only", client_secret=secret, client_auth="basic")
    grant = provider.mint_token(client_id="basic-only")
    account.refresh_file.write_text(grant["refresh_token"] + "\n")
    account.refresh_file.chmod(0o600)
    done = account.run("refresh")
    assert done.returncode == 0, done.stderr
    assert provider.is_active(account.access_file.read_text().strip())
    # the same client sending its secret in the form is refused, and the message says where
    account.write_config(client_id="basic-only", client_secret=secret)
    refused = account.run("refresh", "--force")
    assert refused.returncode == 9, refused.stderr
    assert "client_secret_basic" in refused.stderr and "client_auth" in refused.stderr
    assert secret not in refused.stderr + refused.stdout


def test_client_secret_post_only_provider(account: Account, provider: MockOAuthProvider) -> None:
    provider.register_client("post-only", "pw", auth_method="post")
    grant = provider.mint_token(client_id="post-only")
    account.refresh_file.write_text(grant["refresh_token"] + "\n")
    account.refresh_file.chmod(0o600)
    account.write_config(client_id="post-only", client_secret="pw", client_auth="basic")
    assert account.run("refresh").returncode == 9
    account.write_config(client_id="post-only", client_secret="pw")  # post is the default
    done = account.run("refresh")
    assert done.returncode == 0, done.stderr
