"""Example scheduler units printed by `fetchmail-oauth2 example systemd|cron`."""

from __future__ import annotations

SYSTEMD = """\
# ~/.config/systemd/user/fetchmail-oauth2.service
[Unit]
Description=Refresh the OAuth2 access token for fetchmail/postfix
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart={exe} --quiet -c {config} refresh
# exit 4 = provider temporarily unavailable (old token kept): not worth a failed unit
SuccessExitStatus=4
UMask=0077

# ~/.config/systemd/user/fetchmail-oauth2.timer
[Unit]
Description=Refresh the OAuth2 access token every 10 minutes

[Timer]
OnBootSec=1min
OnUnitActiveSec=10min
RandomizedDelaySec=30s
Persistent=true

[Install]
WantedBy=timers.target

# enable: systemctl --user daemon-reload
#         systemctl --user enable --now fetchmail-oauth2.timer
"""

CRON = """\
# crontab -e: refresh every 10 minutes (quiet unless something is wrong)
*/10 * * * * {exe} --quiet -c {config} refresh
# postfix relay map for several accounts (as root; rebuilt with postmap only on change):
*/10 * * * * {exe} --quiet -c /etc/fetchmail-oauth2/a.conf -c /etc/fetchmail-oauth2/b.conf \
postfix --map /etc/postfix/sasl_passwd
"""

FETCHMAILRC = """\
# ~/.fetchmailrc (patched fetchmail: passwordfile is re-read every poll)
poll imap.gmail.com protocol imap
  auth xoauth2  # or oauthbearer
  user "user@gmail.com"
  passwordfile "/home/user/.fetchmail-oauth2/access_token"
  sslmode tls
# refresh before each run, e.g. in cron: {exe} --quiet -c {config} refresh && fetchmail
"""

EXAMPLES = {"systemd": SYSTEMD, "cron": CRON, "fetchmailrc": FETCHMAILRC}


def render(
    kind: str, exe: str = "fetchmail-oauth2", config: str = "~/.fetchmail-oauth2.conf"
) -> str:
    return EXAMPLES[kind].format(exe=exe, config=config)
