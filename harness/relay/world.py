"""The host side of a relay cell: one mock provider + SMTP submission server per relay, the
accounts, and the refresh job.

Each relay is a `MockStack` of its own (Google's, Microsoft's, an ISP's: each provider issues
and validates its own tokens). Each account is a `fetchmail-oauth2` config, as a user writes
one, whose grant its relay's provider minted. `cron()` runs the job a user's crontab runs —
refresh every account, rebuild postfix's SASL map — on the host, with postmap taken from the
relay container so the map is built by the postfix that reads it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.cell.refresher import refresher_command
from harness.errors import HarnessError
from harness.mockserver.controller import MailServerController
from harness.mockserver.dovecot import DovecotInstance
from harness.mockserver.oauth_provider import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from harness.mockserver.stack import MockStack
from harness.mockserver.tls import TestCA

MAP_NAME = "sasl_passwd"
SCOPE = "mail"


@dataclass(frozen=True)
class Relay:
    """A mail provider's submission server: its profile and password users (if any).

    `dovecot`: the submission server is Debian's Dovecot (oauth2 passdb introspecting at the
    relay's provider, STARTTLS), relaying what it accepts to the stack's SMTP server, the
    sink: the real peer where the mock stands in otherwise.
    """

    name: str
    profile: str = "gmail"
    passwords: tuple[tuple[str, str], ...] = ()
    dovecot: bool = False


@dataclass(frozen=True)
class Account:
    """An OAuth account: its SASL user is also its sender address."""

    name: str
    user: str
    relay: str  # a Relay name


@dataclass
class World:
    tmp: Path
    shared: Path  # the map directory, bind-mounted at the same path in the relay container
    stacks: dict[str, MockStack]  # relay name -> its provider and submission server (or sink)
    ports: dict[str, int]  # relay name -> the port postfix relays to
    accounts: list[Account]
    configs: dict[str, Path]  # account name -> its fetchmail-oauth2 config
    postmap: Path | None = None  # the wrapper running the container's postmap
    transcript: list[str] = field(default_factory=list)
    tokens: dict[str, list[str]] = field(default_factory=dict)  # account -> its tokens so far
    peers: dict[str, DovecotInstance] = field(default_factory=dict)  # Dovecot relays
    _job: list[str] | None = None

    @property
    def map_path(self) -> Path:
        return self.shared / MAP_NAME

    def server(self, relay: str) -> MailServerController:
        """Where the relay's mail arrives: its mock submission server (or Dovecot's sink)."""
        return self.stacks[relay]["smtp"]

    def relay_key(self, relay: str) -> str:
        """How postfix names the relay: [address]:port, no MX lookup."""
        return f"[127.0.0.1]:{self.ports[relay]}"

    def token(self, account: Account) -> str:
        """The account's current access token, as the refresher wrote it."""
        return (self.tmp / account.name / "token").read_text().strip()

    def mark(self, relay: str) -> int:
        return len(self.stacks[relay].provider.log)

    def asked(self, relay: str, mark: int) -> list[str]:
        """The tokens the relay's server had its provider validate since `mark`."""
        log = list(self.stacks[relay].provider.log)[mark:]
        return [params.get("token", "") for endpoint, params in log if endpoint == "introspect"]

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
        self.note_tokens()
        return done

    def note_tokens(self) -> None:
        """Remember each account's current token (after a refresh)."""
        for account in self.accounts:
            seen = self.tokens.setdefault(account.name, [])
            if not seen or seen[-1] != self.token(account):
                seen.append(self.token(account))

    def transcripts(self) -> str:
        parts = [f"--- {name} session {t.peer}\n{t.text()}"
                 for name, stack in self.stacks.items() for t in stack.transcripts]
        parts += [f"--- {name}: Dovecot's log\n{dc.log}" for name, dc in self.peers.items()]
        return "\n".join(parts)


def _write_config(directory: Path, stack: MockStack, account: Account, relay_key: str) -> Path:
    directory.mkdir(mode=0o700)
    refresh = directory / "refresh_token"
    refresh.write_text(stack.mint_token(account.user)["refresh_token"] + "\n")
    refresh.chmod(0o600)
    config = directory / "oauth2.conf"
    config.write_text(
        f"client_id = {DEFAULT_CLIENT_ID}\n"
        f"client_secret = {DEFAULT_CLIENT_SECRET}\n"
        f"auth_url = {stack.provider.authorize_url}\n"
        f"token_url = {stack.provider.token_url}\n"
        f"scope = {SCOPE}\n"
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
    """Each relay's provider and server up, each account's grant minted and config written."""
    shared = tmp / "postfix"
    shared.mkdir(mode=0o700)
    with contextlib.ExitStack() as running:
        stacks: dict[str, MockStack] = {}
        ports: dict[str, int] = {}
        peers: dict[str, DovecotInstance] = {}
        for relay in relays:
            ca_dir = tmp / "ca" / relay.name
            if relay.dovecot:
                stack = MockStack(("smtp",), tls="plain", profile=relay.profile, scope=SCOPE,
                                  require_auth=False)
            else:
                stack = MockStack(("smtp",), tls="starttls", profile=relay.profile, scope=SCOPE,
                                  ca_dir=ca_dir, passwords=dict(relay.passwords))
            stack.provider.access_token_bytes = token_bytes
            stacks[relay.name] = running.enter_context(stack)
            ports[relay.name] = stack["smtp"].port
            if relay.dovecot:
                dc = running.enter_context(DovecotInstance(
                    stack.provider.introspection_url, *stack.provider.resource_credentials,
                    accounts[0].user, scope=SCOPE, submission_relay=stack["smtp"].port,
                    tls=TestCA(ca_dir),
                ))
                peers[relay.name], ports[relay.name] = dc, dc.submission_port
        configs = {a.name: _write_config(tmp / a.name, stacks[a.relay], a,
                                         f"[127.0.0.1]:{ports[a.relay]}") for a in accounts}
        yield World(tmp, shared, stacks, ports, accounts, configs, peers=peers)
