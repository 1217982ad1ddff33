"""The token refresher of a cell: the real `fetchmail-oauth2` CLI against the mock provider."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.cell.mail import USER
from harness.errors import HarnessError
from harness.mockserver.oauth_provider import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    MockOAuthProvider,
)


def refresher_command() -> list[str]:
    """The real `fetchmail-oauth2` CLI (next to this Python, or on PATH)."""
    beside = Path(sys.executable).with_name("fetchmail-oauth2")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("fetchmail-oauth2")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from tokens.cli import main; sys.exit(main())"]


@dataclass
class Refresher:
    """fetchmail-oauth2 configured against the mock provider, writing `access_token_file`."""

    directory: Path
    provider: MockOAuthProvider
    refresh_token: str
    transcript: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.access_token_file = self.directory / "token"
        refresh_file = self.directory / "refresh_token"
        refresh_file.write_text(self.refresh_token + "\n")
        refresh_file.chmod(0o600)
        self.config = self.directory / "oauth2.conf"
        self.config.write_text(
            f"client_id={DEFAULT_CLIENT_ID}\n"
            f"client_secret={DEFAULT_CLIENT_SECRET}\n"
            f"auth_url={self.provider.authorize_url}\n"
            f"token_url={self.provider.token_url}\n"
            "scope=mail\n"
            f"user={USER}\n"
            f"refresh_token_file={refresh_file}\n"
            f"access_token_file={self.access_token_file}\n"
            "retries=1\nretry_backoff_sec=1\nhttp_timeout_sec=10\n"
        )
        self.config.chmod(0o600)

    def refresh(self, force: bool = False) -> str:
        cmd = [*refresher_command(), "-c", str(self.config), "refresh"]
        if force:
            cmd.append("--force")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.transcript.append(f"$ fetchmail-oauth2 refresh{' --force' if force else ''}"
                               f" -> {proc.returncode}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            raise HarnessError(
                f"fetchmail-oauth2 refresh failed ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-500:]}"
            )
        token = self.access_token_file.read_text().strip()
        if not token:
            raise HarnessError("fetchmail-oauth2 wrote an empty access token file")
        return token
