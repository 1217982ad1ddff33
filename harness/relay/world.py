"""The host side of a relay cell: mock provider, mock submission servers, accounts, cron job.

Each account is a `fetchmail-oauth2` config (as a user writes one) whose grant the mock
provider minted, relayed through one of the mock submission servers. `cron()` runs the job a
user's crontab runs — refresh every account, rebuild postfix's SASL map — on the host, with
postmap taken from the relay container so the map is built by the postfix that reads it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.cell.refresher import refresher_command
from harness.errors import HarnessError
from harness.mockserver import MailServerController, TestCA
from harness.mockserver.oauth_provider import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    MockOAuthProvider,
)
from harness.mockserver.validators import (
    BearerValidator,
    IntrospectionValidator,
    Validation,
    Verdict,
)

MAP_NAME = "sasl_passwd"


@dataclass(frozen=True)
class Relay:
    """A mock submission server: its mail-provider profile and password users (if any)."""

    name: str
    profile: str = "gmail"
    passwords: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Account:
    """An OAuth account: its SASL user is also its sender address."""

    name: str
    user: str
    relay: str  # a Relay name


@dataclass(frozen=True)
class Check:
    """One token the server was asked about, and what was decided."""

    user: str
    token: str
    verdict: Verdict


class RecordingValidator:
    """Validates through the provider's introspection endpoint and remembers every question."""

    def __init__(self, inner: BearerValidator) -> None:
        self.inner = inner
        self.required_scope = getattr(inner, "required_scope", None)
        self._lock = threading.Lock()
        self.checks: list[Check] = []

    def validate(self, user: str, token: str) -> Validation:
        result = self.inner.validate(user, token)
        with self._lock:
            self.checks.append(Check(user, token, result.verdict))
        return result

    def since(self, mark: int) -> list[Check]:
        with self._lock:
            return self.checks[mark:]

    def mark(self) -> int:
        with self._lock:
            return len(self.checks)


@dataclass
class World:
    tmp: Path
    shared: Path  # the map directory, bind-mounted at the same path in the relay container
    provider: MockOAuthProvider
    servers: dict[str, MailServerController]
    validator: RecordingValidator
    accounts: list[Account]
    configs: dict[str, Path]
    postmap: Path | None = None  # the wrapper running the container's postmap
    transcript: list[str] = field(default_factory=list)
    _job: list[str] | None = None

    @property
    def map_path(self) -> Path:
        return self.shared / MAP_NAME

    def token(self, account: Account) -> str:
        """The account's current access token, as the refresher wrote it."""
        return (self.tmp / account.name / "token").read_text().strip()

    def use_container_postmap(self, container_id: str) -> None:
        docker = shutil.which("docker")
        if docker is None:
            raise HarnessError("the docker command is needed (to run postmap in the relay "
                               "container): apt-get install docker.io")
        self.postmap = self.tmp / "postmap"
        self.postmap.write_text(
            "#!/bin/sh\n# postmap of the relay container, as the user running the job\n"
            f'exec {docker} exec -u {os.getuid()}:{os.getgid()} {container_id} postmap "$@"\n'
        )
        self.postmap.chmod(0o755)

    def example(self, kind: str, *args: str) -> str:
        """What `fetchmail-oauth2 -c … example KIND ARGS` prints for the cell's accounts."""
        configs = [a for name in self.configs for a in ("-c", str(self.configs[name]))]
        done = subprocess.run([*refresher_command(), *configs, "example", kind, *args],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise HarnessError(f"`fetchmail-oauth2 example {kind}` failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-500:]}")
        return done.stdout

    def job(self) -> list[str]:
        """The refresh job `example cron --postfix-map MAP` prints (a crontab line's command)."""
        if self._job is None:
            printed = self.example("cron", "--postfix-map", str(self.map_path))
            lines = [ln for ln in printed.splitlines()
                     if ln.startswith("*/") and " postfix " in ln]
            if len(lines) != 1:
                raise HarnessError(f"`example cron` printed no single map job:\n{printed}")
            self._job = shlex.split(lines[0].split(None, 5)[5])
            self.transcript.append(f"crontab line: {lines[0]}")
        return self._job

    def cron(self) -> subprocess.CompletedProcess[str]:
        """One run of the user's refresh job: every account refreshed, the map rebuilt (with
        the relay container's postmap)."""
        if self.postmap is None:
            raise HarnessError("no postmap yet (the relay container is not up)")
        cmd = [*self.job(), "--postmap", str(self.postmap)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.transcript.append(f"$ {shlex.join(cmd)} -> {done.returncode}\n"
                               f"{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise HarnessError(f"the refresh job failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-500:]}")
        return done


def relay_key(server: MailServerController) -> str:
    """How postfix names a mock submission server: [address]:port, no MX lookup."""
    return f"[127.0.0.1]:{server.port}"


def _write_config(directory: Path, provider: MockOAuthProvider, account: Account,
                  refresh_token: str, relay_key: str) -> Path:
    directory.mkdir(mode=0o700)
    refresh = directory / "refresh_token"
    refresh.write_text(refresh_token + "\n")
    refresh.chmod(0o600)
    config = directory / "oauth2.conf"
    config.write_text(
        f"client_id = {DEFAULT_CLIENT_ID}\n"
        f"client_secret = {DEFAULT_CLIENT_SECRET}\n"
        f"auth_url = {provider.authorize_url}\n"
        f"token_url = {provider.token_url}\n"
        "scope = mail\n"
        f"user = {account.user}\n"
        f"refresh_token_file = {refresh}\n"
        f"access_token_file = {directory / 'token'}\n"
        f"postfix_relay = {relay_key}\n"
        f"postfix_key = {account.user}\n"
        "# every run of the job finds the token due, so each run rotates it\n"
        "max_age_sec = 0\n"
        "retries = 1\nretry_backoff_sec = 1\nhttp_timeout_sec = 10\n"
    )
    config.chmod(0o600)
    return config


@contextlib.contextmanager
def world(tmp: Path, relays: list[Relay], accounts: list[Account], *,
          token_bytes: int = 32) -> Iterator[World]:
    """Provider and servers up, each account's grant minted and its config written."""
    shared = tmp / "postfix"
    shared.mkdir(mode=0o700)
    ca = TestCA(tmp / "ca")
    with contextlib.ExitStack() as stack:
        provider = stack.enter_context(MockOAuthProvider(access_token_bytes=token_bytes))
        client_id, secret = provider.resource_credentials
        validator = RecordingValidator(
            IntrospectionValidator(provider.introspection_url, client_id, secret)
        )
        servers: dict[str, MailServerController] = {}
        for relay in relays:
            servers[relay.name] = stack.enter_context(MailServerController(
                "smtp", tls="starttls", validator=validator, profile=relay.profile, ca=ca,
                passwords=dict(relay.passwords), scope="mail",
            ))
        configs = {}
        for account in accounts:
            grant = provider.mint_token(account.user, scope="mail")
            key = relay_key(servers[account.relay])
            configs[account.name] = _write_config(tmp / account.name, provider, account,
                                                  grant["refresh_token"], key)
        yield World(tmp, shared, provider, servers, validator, accounts, configs)


def relay_transcripts(world: World) -> str:
    parts = []
    for name, server in world.servers.items():
        for t in server.transcripts:
            parts.append(f"--- {name} session {t.peer}\n{t.text()}")
    return "\n".join(parts)
