"""A private Dovecot 2.3 instance (reference server) validating bearer tokens over RFC 7662.

Used by the side-by-side tests: same tokens, same provider, same messages, compare what
Dovecot says with what the mock says. IMAP, POP3 and (with `submission_relay`, where it
relays accepted mail) SMTP submission. Also the real server of the matrix's `dovecot` cells.
On the host it needs root (dovecot drops to `nobody` for mail) and Debian's dovecot-imapd,
dovecot-pop3d and dovecot-submissiond; with `image=` it runs Dovecot of that image
(harness.build.images makes one from Debian bookworm) in a container on the host network
instead, which needs only a Docker engine. Mail belongs to `nobody` (uid 65534), never root.
"""

from __future__ import annotations

import os
import secrets
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

TLS = """\
ssl = required
disable_plaintext_auth = yes
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
service imap-login {{
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service pop3-login {{
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s_port}
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

# Dovecot's own record of every SASL exchange: the client's answer to an error challenge
# (`client in: CONT`), the mechanism of every attempt, password logins it refused.
AUTH_DEBUG = """\
auth_verbose = yes
auth_debug = yes
auth_debug_passwords = yes
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


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: all bound at once, so the kernel cannot hand out one twice
    (free_port() twice can, and dovecot then refuses a "duplicate listener")."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _with_credentials(url: str, client_id: str, secret: str) -> str:
    parts = urlsplit(url)
    netloc = f"{quote(client_id, safe='')}:{quote(secret, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


class DovecotInstance:
    """`with DovecotInstance(url, cid, secret, user, messages) as d: d.imap_port, d.pop3_port`.

    `mechanisms`: what auth_mechanisms offers (e.g. ("xoauth2",) for an XOAUTH2-only server);
    `submission_relay`: the port of an SMTP server on 127.0.0.1 that Dovecot's submission
    service relays to (then `submission_port` listens); `pop3_lock_session`: a second POP3
    login while one is open waits 10 s for the lock, then gets `-ERR [IN-USE]`.  An
    unreachable `introspection_url` makes it answer every bearer login with a temporary
    failure (IMAP `NO [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`).  `tls`: a CA whose server
    certificate Dovecot offers (STARTTLS; `ssl = yes`), else no TLS at all.
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
        auth_debug: bool = False,
        image: str | None = None,
    ) -> None:
        self.image = image
        self.container = f"fmh-dovecot-{secrets.token_hex(6)}" if image else ""
        binary = "dovecot" if image else dovecot_binary()
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
        self.imap_port, self.pop3_port, submission = free_ports(3)
        self.submission_port = submission if submission_relay is not None else 0
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
            # the copies in root/tls (below): a Dovecot container sees only root
            ssl=(f"ssl = yes\nssl_cert = <{self.root}/tls/cert.pem\n"
                 f"ssl_key = <{self.root}/tls/key.pem" if tls is not None else "ssl = no"),
        )
        if submission_relay is not None:
            config += SUBMISSION.format(
                hostname=socket.gethostname(),
                relay_port=submission_relay,
                submission_port=self.submission_port,
            )
        self.imaps_port = self.pop3s_port = 0
        if tls is not None:
            self.imaps_port, self.pop3s_port = free_port(), free_port()
            (self.root / "tls").mkdir()
            shutil.copyfile(tls.cert_path, self.root / "tls" / "cert.pem")
            shutil.copyfile(tls.key_path, self.root / "tls" / "key.pem")
            config += TLS.format(root=self.root, imaps_port=self.imaps_port,
                                 pop3s_port=self.pop3s_port)
        if auth_debug:
            config += AUTH_DEBUG
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
        if self.image:  # chowned inside the container, where we are root
            return
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
        try:
            return path.read_text(errors="replace") if path.exists() else ""
        except PermissionError:  # the container's root wrote it and we are not root
            if not (self.image and self._proc is not None):
                raise
            return self._exec(["cat", str(path)], check=False).decode(errors="replace")

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / self.user

    def add_message(self, data: bytes) -> str:
        """Deliver `data` into the maildir's new/ (as Dovecot's LDA would); its file name."""
        name = f"{time.time_ns()}.M{secrets.token_hex(4)}P1.mock"
        tmp, new = self.maildir / "tmp" / name, self.maildir / "new" / name
        if self.image:
            self._exec(["sh", "-c", f'cat > "{tmp}" && chown {NOBODY_UID}:{NOBODY_GID} '
                        f'"{tmp}" && mv "{tmp}" "{new}"'], data=data)
        else:
            tmp.write_bytes(data)
            os.chown(tmp, NOBODY_UID, NOBODY_GID)
            os.replace(tmp, new)
        return name

    def messages(self) -> list[str]:
        """The maildir's messages, `new/NAME` or `cur/NAME:2,FLAGS` (S: seen, T: deleted)."""
        if self.image:
            out = self._exec(["sh", "-c", f'cd "{self.maildir}" && find new cur -type f'])
            return sorted(out.decode().split())
        return sorted(str(p.relative_to(self.maildir)) for sub in ("new", "cur")
                      for p in (self.maildir / sub).iterdir())

    def _argv(self) -> list[str]:
        config = str(self.config_path)
        if not self.image:
            return [self.binary, "-F", "-c", config]
        root = str(self.root)
        # docker run in the foreground: SIGTERM to the CLI reaches dovecot (PID 1) by proxy
        return ["docker", "run", "--rm", "--name", self.container, "--network", "host",
                "-v", f"{root}:{root}", self.image, "sh", "-c",
                f'chown -R {NOBODY_UID}:{NOBODY_GID} "{root}/mail" "{root}/home" '
                f'&& exec dovecot -F -c "{config}"']

    def _exec(self, argv: list[str], *, data: bytes | None = None, check: bool = True) -> bytes:
        """Run argv in the running container (as its root)."""
        proc = subprocess.run(["docker", "exec", "-i", self.container, *argv], input=data,
                              capture_output=True, timeout=60)
        if check and proc.returncode != 0:
            raise HarnessError(f"in the dovecot container: {' '.join(argv)} exited "
                               f"{proc.returncode}: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def start(self) -> DovecotInstance:
        self._proc = subprocess.Popen(
            self._argv(),
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "master.err", "wb"),  # noqa: SIM115
        )
        deadline = time.monotonic() + (60 if self.image else 20)
        for port in (self.imap_port, self.pop3_port, self.imaps_port, self.pop3s_port,
                     self.submission_port):
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
        if self.image and self._proc is not None and self._proc.poll() is None:
            # nobody's files: only the container's root may remove them
            self._exec(["rm", "-rf", str(self.root / "mail"), str(self.root / "home"),
                        str(self.root / "run"), str(self.root / "state")], check=False)
        self.stop()
        if self.image:
            subprocess.run(["docker", "rm", "-f", self.container], capture_output=True)
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
