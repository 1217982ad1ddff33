"""Ready-made text printed by `fetchmail-oauth2 example KIND`, for the accounts of the -c configs.

Every command they name is an absolute path (cron's PATH is /usr/bin:/bin, and systemd does
not search a venv or pipx install). `postfix` prints sections, each opened by a line
`# --- NAME ---` (NAME: main.cf, master.cf, tls_policy, relayhost_map, sasl_passwd);
`--section NAME` prints one section's lines alone, ready to be written to a file.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import NamedTuple

from tokens.config import Config
from tokens.errors import ConfigError
from tokens.postfix import relay_key

KINDS = ("fetchmailrc", "systemd", "cron", "postfix")
POSTFIX_SECTIONS = ("main.cf", "master.cf", "tls_policy", "relayhost_map", "sasl_passwd")


class Job(NamedTuple):
    """What the examples run: this CLI, its -c configs, and the postfix map if any."""

    exe: list[str]
    configs: list[str]
    postfix_map: str | None = None
    db_type: str = "hash"

    def command(self, sub: str = "") -> str:
        args = [*self.exe, "--quiet", *(a for c in self.configs for a in ("-c", c))]
        if sub:
            return shlex.join(args) + " " + sub
        if self.postfix_map:
            return shlex.join([*args, "postfix", "--map", self.postfix_map, "--type", self.db_type])
        return shlex.join([*args, "refresh"])


PLACEHOLDER_POLL = ("imap.gmail.com", "user@gmail.com", "/home/user/.fetchmail-oauth2/token")


def fetchmailrc(configs: list[Config]) -> str:
    """A poll entry per account (a placeholder one without -c)."""
    accounts = [
        (c.imap_server or PLACEHOLDER_POLL[0], c.user or "USER", str(c.access_token_file))
        for c in configs
    ]
    polls = []
    for server, user, token in accounts or [PLACEHOLDER_POLL]:
        host, _, port = server.partition(":")
        service = f" service {port}" if port else ""
        polls.append(
            f"poll {host} protocol imap{service}\n"
            "  auth xoauth2\n"
            f'  user "{user}"\n'
            f'  passwordfile "{token}"\n'
            "  ssl sslcertck\n"
        )
    return (
        "# ~/.fetchmailrc (chmod 600) for fetchmail 6.x with this project's patches:\n"
        "# passwordfile is re-read at every poll, so a daemon uses each refreshed token.\n"
        + "".join(polls)
        + "# fetchmail 7 (native OAuth) needs instead: `auth oauthbearer` (it has no xoauth2)\n"
        "# and `sslmode wrapped sslcertck` (`ssl` is obsolescent there).\n"
    )


def systemd(job: Job, fetchmail: str) -> str:
    what = "and the postfix map " if job.postfix_map else ""
    return f"""\
# ~/.config/systemd/user/fetchmail-oauth2.service
[Unit]
Description=Refresh the OAuth2 access tokens {what}for every account
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart={job.command()}
# exit 4 = provider temporarily unavailable (old token kept): not worth a failed unit
SuccessExitStatus=4
UMask=0077

# ~/.config/systemd/user/fetchmail-oauth2.timer
[Unit]
Description=Refresh the OAuth2 access tokens every 10 minutes

[Timer]
OnBootSec=1min
OnUnitActiveSec=10min
RandomizedDelaySec=30s
Persistent=true

[Install]
WantedBy=timers.target

# ~/.config/systemd/user/fetchmail.service
[Unit]
Description=fetchmail daemon (patched: re-reads its passwordfile at every poll)
After=network-online.target
Wants=network-online.target

[Service]
# a fresh token before the first poll; "-": start even if the provider is down
ExecStartPre=-{job.command("refresh")}
ExecStart={shlex.quote(fetchmail)} --nodetach --daemon 300 --fetchmailrc %h/.fetchmailrc
Restart=on-failure
RestartSec=60

[Install]
WantedBy=default.target

# enable: systemctl --user daemon-reload
#         systemctl --user enable --now fetchmail-oauth2.timer fetchmail.service
#         loginctl enable-linger "$USER"   # keep them running while logged out
"""


def cron(job: Job, fetchmail: str) -> str:
    what = " and rebuild the postfix map" if job.postfix_map else ""
    return (
        "# crontab -e (absolute paths: cron's PATH is /usr/bin:/bin)\n"
        f"# every 10 minutes refresh every account{what}; quiet unless something is wrong\n"
        f"*/10 * * * * {job.command()}\n"
        "# fetchmail as a daemon from boot (patched: re-reads its passwordfile at every poll)\n"
        f"@reboot {shlex.quote(fetchmail)} --daemon 300 --fetchmailrc $HOME/.fetchmailrc\n"
    )


def postfix_sections(configs: list[Config], job: Job, postfix_dir: Path) -> dict[str, list[str]]:
    relayed = [c for c in configs if c.in_postfix_map]
    if not relayed:
        raise ConfigError(
            "none of the -c accounts sets postfix_relay or postfix_key; add e.g. "
            "`postfix_key = you@example.com` (your sender address) to each relaying account"
        )
    missing = [c.name for c in relayed if not c.relay]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: set postfix_relay (e.g. [smtp.gmail.com]:587)")
    relays = list(dict.fromkeys(relay_key(c.relay or "") for c in relayed))
    db = job.db_type
    pdir = str(postfix_dir)
    main = [
        f"relayhost = {relays[0]}",
        "smtp_sasl_auth_enable = yes",
        f"smtp_sasl_password_maps = {db}:{job.postfix_map or pdir + '/sasl_passwd'}",
        "smtp_sasl_mechanism_filter = xoauth2",
        "# empty: the default (noplaintext, noanonymous) leaves no mechanism for XOAUTH2",
        "smtp_sasl_security_options =",
        "smtp_sender_dependent_authentication = yes",
        f"sender_dependent_relayhost_maps = {db}:{pdir}/relayhost_map",
        "smtp_tls_security_level = encrypt",
        f"smtp_tls_policy_maps = {db}:{pdir}/tls_policy",
    ]
    master = [
        "# nothing to add: the stock smtp transport relays with XOAUTH2, chrooted or not",
        "# smtp      unix  -       -       y       -       -       smtp",
    ]
    tls = [f"{relay} encrypt" for relay in relays]
    senders = [
        f"{c.postfix_key or c.user} {relay_key(c.relay or '')}"
        for c in relayed
        if c.postfix_key or c.user
    ]
    sasl = [
        "# holds tokens: written (and rebuilt with postmap) by the refresh job, never by hand:",
        f"# {job.command()}",
    ]
    return {
        "main.cf": main,
        "master.cf": master,
        "tls_policy": tls,
        "relayhost_map": senders,
        "sasl_passwd": sasl,
    }


def postfix(configs: list[Config], job: Job, postfix_dir: Path, section: str | None) -> str:
    sections = postfix_sections(configs, job, postfix_dir)
    if section is not None:
        return "".join(line + "\n" for line in sections[section])
    out = [
        "# postfix relaying through the provider with XOAUTH2 (fetchmail-oauth2 example postfix)",
        "# main.cf lines go in with `postconf -e`; each map file then needs `postmap`.",
    ]
    for name, lines in sections.items():
        out.append(f"# --- {name} ---")
        if name in ("tls_policy", "relayhost_map"):
            out.append(
                f"# file {postfix_dir / name}, then: postmap {job.db_type}:{postfix_dir / name}"
            )
        out.extend(lines)
    return "".join(line + "\n" for line in out)
