"""A private Dovecot 2.3 instance (reference server) validating bearer tokens over RFC 7662.

Used by the side-by-side tests: same tokens, same provider, same messages, compare what
Dovecot says with what the mock says. IMAP, POP3 and (with `submission_relay`, where it
relays accepted mail) SMTP submission. Needs root (dovecot drops to `nobody` for mail) and
Debian's dovecot-imapd, dovecot-pop3d and dovecot-submissiond.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urlsplit, urlunsplit

from harness.errors import HarnessError
from harness.mockserver.tls import TestCA

SUBMISSION_BINARY = "/usr/lib/dovecot/submission"
NOBODY_UID = 65534
NOBODY_GID = 65534

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = {protocols}
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
auth_cache_size = 0
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
first_valid_gid = 1
pop3_lock_session = {pop3_lock_session}
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = oauth2
  mechanisms = {mechanisms}
  args = {root}/dovecot-oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
# No auth penalty: the auth process cannot open this socket, so failed logins never stall.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""

SUBMISSION = """\
hostname = {hostname}
submission_relay_host = 127.0.0.1
submission_relay_port = {relay_port}
submission_relay_ssl = no
service submission-login {{
  inet_listener submission {{
    address = 127.0.0.1
    port = {submission_port}
  }}
  inet_listener submissions {{
    port = 0
  }}
}}
"""

OAUTH2 = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
scope = {scope}
"""


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_credentials(url: str, client_id: str, secret: str) -> str:
    parts = urlsplit(url)
    netloc = f"{quote(client_id, safe='')}:{quote(secret, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


class DovecotInstance:
    """`with DovecotInstance(url, cid, secret, user, messages) as d: d.imap_port, d.pop3_port`.

    `mechanisms`: what auth_mechanisms offers (e.g. ("xoauth2",) for an XOAUTH2-only server);
    `submission_relay`: the port of an SMTP server on 127.0.0.1 that Dovecot's submission
    service relays to (then `submission_port` listens); `pop3_lock_session`: a second POP3
    login while one is open waits 10 s for the lock, then gets `-ERR [IN-USE]`; `tls`: a CA
    whose server certificate Dovecot offers (STARTTLS; `ssl = yes`), else no TLS at all.
    """

    def __init__(
        self,
        introspection_url: str,
        client_id: str,
        client_secret: str,
        user: str,
        messages: Iterable[bytes] = (),
        scope: str = "mail",
        *,
        mechanisms: tuple[str, ...] = ("xoauth2", "oauthbearer"),
        submission_relay: int | None = None,
        pop3_lock_session: bool = False,
        tls: TestCA | None = None,
    ) -> None:
        binary = dovecot_binary()
        if binary is None:
            raise HarnessError(
                "dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)"
            )
        if submission_relay is not None and not os.path.exists(SUBMISSION_BINARY):
            raise HarnessError("dovecot-submissiond is not installed")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="fmh-dovecot-", dir="/tmp"))
        self.root.chmod(0o755)
        self.user = user
        self.imap_port = free_port()
        self.pop3_port = free_port()
        self.submission_port = free_port() if submission_relay is not None else 0
        self.config_path = self.root / "dovecot.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        for sub in ("run", "state"):
            (self.root / sub).mkdir()
        self._write_maildir(messages)
        (self.root / "dovecot-oauth2.conf.ext").write_text(
            OAUTH2.format(
                url=_with_credentials(introspection_url, client_id, client_secret), scope=scope
            )
        )
        config = CONFIG.format(
            root=self.root,
            uid=NOBODY_UID,
            gid=NOBODY_GID,
            imap_port=self.imap_port,
            pop3_port=self.pop3_port,
            protocols="imap pop3" + (" submission" if submission_relay is not None else ""),
            mechanisms=" ".join(m.lower() for m in mechanisms),
            pop3_lock_session="yes" if pop3_lock_session else "no",
            ssl=(f"ssl = yes\nssl_cert = <{tls.cert_path}\nssl_key = <{tls.key_path}"
                 if tls is not None else "ssl = no"),
        )
        if submission_relay is not None:
            config += SUBMISSION.format(
                hostname=socket.gethostname(),
                relay_port=submission_relay,
                submission_port=self.submission_port,
            )
        self.config_path.write_text(config)

    def _write_maildir(self, messages: Iterable[bytes]) -> None:
        maildir = self.root / "mail" / self.user
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        stamp = int(time.time()) - 100_000
        for n, data in enumerate(messages):
            # Ascending names in cur/ keep the order (dovecot sorts new mail by name).
            (maildir / "cur" / f"{stamp + n}.M{n:06d}P1.mock:2,").write_bytes(data)
        (self.root / "home" / self.user).mkdir(parents=True)
        for path in [
            self.root / "mail",
            self.root / "home",
            *self.root.glob("mail/**"),
            *self.root.glob("home/**"),
        ]:
            os.chown(path, NOBODY_UID, NOBODY_GID)

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> DovecotInstance:
        self._proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "master.err", "wb"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 20
        for port in (self.imap_port, self.pop3_port, self.submission_port):
            if not port:
                continue
            while True:
                if self._proc.poll() is not None:
                    err = (self.root / "master.err").read_text(errors="replace")
                    raise HarnessError(f"dovecot exited: {err}\n{self.log}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise HarnessError(
                            f"dovecot did not listen on {port}:\n{self.log}"
                        ) from None
                    time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotInstance:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
