"""`fetchmail-oauth2` as a user runs it (a process), and account configs for the mock provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.mockserver.oauth_provider import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    MockOAuthProvider,
)

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DISPLAY", None)  # never start a browser from tests
    env.pop("WAYLAND_DISPLAY", None)
    return env


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tokens.cli", *args]


def run_cli(
    *args: str, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess."""
    return subprocess.run(
        cli_cmd(*args),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        check=False,
    )


def popen_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_cmd(*args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


@dataclass
class Account:
    """One account config (0600) in a temp dir, pointing at the provider."""

    dir: Path
    provider: MockOAuthProvider
    name: str = "account"

    @property
    def config(self) -> Path:
        return self.dir / f"{self.name}.conf"

    @property
    def refresh_file(self) -> Path:
        return self.dir / f"{self.name}.refresh"

    @property
    def access_file(self) -> Path:
        return self.dir / f"{self.name}.access"

    @property
    def state_file(self) -> Path:
        return self.dir / f"{self.name}.access.state"

    def write_config(self, **overrides: str | None) -> Path:
        values: dict[str, str | None] = {
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "auth_url": self.provider.authorize_url,
            "token_url": self.provider.token_url,
            "device_auth_url": self.provider.device_url,
            "scope": "mail",
            "user": "user@example.com",
            "refresh_token_file": self.refresh_file.name,  # relative: resolved next to config
            "access_token_file": str(self.access_file),
            "retries": "1",
            "retry_backoff_sec": "0.05",
            "http_timeout_sec": "5",
        }
        values.update(overrides)
        text = "# test account\n" + "".join(
            f"{k}={v}\n" for k, v in values.items() if v is not None
        )
        self.config.write_text(text)
        self.config.chmod(0o600)
        return self.config

    def seed(self, user: str = "user@example.com") -> dict[str, str]:
        """As if `authorize` had run long ago: a refresh token, no access token."""
        grant = self.provider.mint_token(user)
        self.refresh_file.write_text(grant["refresh_token"] + "\n")
        self.refresh_file.chmod(0o600)
        return grant

    def age_state(self, seconds: float) -> None:
        """Pretend the current access token was obtained `seconds` earlier."""
        data = json.loads(self.state_file.read_text())
        data["obtained_at"] -= seconds
        data["expires_at"] -= seconds
        self.state_file.write_text(json.dumps(data))

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli("-c", str(self.config), *args, input=input)


def wait_for_line(stream: object, prefix: str, deadline: float = 30.0) -> tuple[str, list[str]]:
    """Read lines from a text stream until one starts with `prefix`."""
    seen: list[str] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            break
        seen.append(line)
        if line.startswith(prefix):
            return line.strip(), seen
    raise AssertionError(f"no line starting with {prefix!r}; got {seen!r}")
