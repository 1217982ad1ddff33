"""postfix running in a relay container: configure it, submit with sendmail, read queue and log.

The container shares the host's network (postfix reaches the mock servers on loopback; its own
smtpd listener is switched off, so it binds no port) and bind-mounts the cell's map directory
at the same path, so the token refresher on the host and postfix in the container name the
same files. The plugin goes into the distro's system SASL plugin directory, as `make install`
does; the box checks it is the only client plugin there offering XOAUTH2.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.build.container import Container
from harness.cell.checks import CheckFailed
from harness.errors import HarnessError
from harness.relay.image import ensure_relay_image
from harness.relay.plugin import PLUGIN_FILE, PluginBuild

LOG = "/var/log/postfix.log"
MYHOSTNAME = "relay.test"
# The machine's own settings, not the relay's: who it is, no local delivery, log to a file.
BASE_MAIN_CF = f"""\
compatibility_level = 3.6
myhostname = {MYHOSTNAME}
mydestination =
inet_protocols = ipv4
alias_maps =
maillog_file = {LOG}
"""
WAIT = 60.0  # seconds a queue/log condition may take before the cell fails


class RelayError(HarnessError):
    """postfix in the relay container did not do what the cell needed."""


@dataclass(frozen=True)
class QueuedMail:
    queue_id: str
    queue: str  # active, deferred, hold, incoming, maildrop
    sender: str
    reasons: tuple[str, ...]  # delay reasons of its recipients (postqueue -j)


class PostfixBox:
    """`with PostfixBox(client, plugin, shared) as box:` — a relay container, postfix stopped.

    `configure()` installs main.cf/master.cf additions and lookup tables and (re)starts
    postfix; `sendmail()` submits; `queue()`, `log()` and `wait_*()` observe.
    """

    def __init__(self, client: Any, plugin: PluginBuild, shared: Path) -> None:
        self.client = client
        self.plugin = plugin
        self.shared = shared
        self.distro = plugin.distro
        self._box: Container | None = None
        self._sent = 0
        self.started = False

    @property
    def box(self) -> Container:
        if self._box is None:
            raise HarnessError("the relay container is not running (use it as a context manager)")
        return self._box

    def __enter__(self) -> PostfixBox:
        tag, _ = ensure_relay_image(self.client, self.distro)
        self._box = Container(
            self.client, tag, network_mode="host",
            volumes={str(self.shared): {"bind": str(self.shared), "mode": "rw"}},
        )
        self._box.__enter__()
        try:
            self._install_plugin()
            self.box.check(
                "sed -i -E 's/^(smtp +inet )/#\\1/' /etc/postfix/master.cf && "
                "cp /etc/postfix/master.cf /etc/postfix/master.cf.base && "
                f"printf %s {shlex.quote(BASE_MAIN_CF)} > /etc/postfix/main.cf"
            )
        except BaseException:
            self._box.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._box is not None:
            self._box.remove()
            self._box = None

    def _install_plugin(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / PLUGIN_FILE
            staged.write_bytes(self.plugin.plugin.read_bytes())
            self.box.put(staged, f"/tmp/{PLUGIN_FILE}")
        plugin_dir = self.box.check(
            "dirname \"$(ls /usr/lib/*/sasl2/libplain.so | head -1)\""
        ).strip()
        self.box.check(f"install -m 644 /tmp/{PLUGIN_FILE} {plugin_dir}/{PLUGIN_FILE}")
        viewer = self.box.check(["saslpluginviewer", "-c"])
        offers = viewer.count("SASL mechanism: XOAUTH2,")
        if offers != 1:
            raise RelayError(f"{offers} client plugins offer XOAUTH2 in {plugin_dir} (want "
                             f"exactly ours):\n{viewer[-1500:]}")
        self.plugin_dir = plugin_dir

    # -- configuration ------------------------------------------------------------------------

    def configure(self, main_cf: str, master_cf: str = "",
                  tables: dict[str, str] | None = None) -> None:
        """main.cf = BASE_MAIN_CF, then each line of `main_cf` (comments skipped) given to
        `postconf -e` as a user does; master.cf = Debian's + `master_cf`; each table (absolute
        path -> content) written and postmapped; then postfix started, or reloaded."""
        settings = [ln for ln in main_cf.splitlines() if ln.strip() and not ln.startswith("#")]
        script = [
            "set -e",
            f"printf %s {shlex.quote(BASE_MAIN_CF)} > /etc/postfix/main.cf",
            *([shlex.join(["postconf", "-e", *settings])] if settings else []),
            "cp /etc/postfix/master.cf.base /etc/postfix/master.cf",
            f"printf %s {shlex.quote(master_cf)} >> /etc/postfix/master.cf",
        ]
        for path, content in (tables or {}).items():
            script += [f"printf %s {shlex.quote(content)} > {shlex.quote(path)}",
                       f"postmap hash:{shlex.quote(path)}"]
        if self.started:
            script += ["postsuper -d ALL >/dev/null 2>&1 || true", "postfix reload"]
        else:
            script += ["postfix start"]  # checks the configuration first
        self.box.check("\n".join(script))
        self.started = True

    def postconf(self, *names: str) -> dict[str, str]:
        out = self.box.check(["postconf", *names])
        pairs = (line.partition("=") for line in out.splitlines() if "=" in line)
        return {name.strip(): value.strip() for name, _, value in pairs}

    # -- mail ---------------------------------------------------------------------------------

    def sendmail(self, message: bytes, sender: str, recipients: list[str]) -> None:
        """Submit `message` as root with postfix's sendmail(1) as mail clients call it (mutt:
        `sendmail -oem -oi`): -oi, or a line holding only "." would end the message there."""
        self._sent += 1
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"msg{self._sent}"
            path.write_bytes(message)
            self.box.put(path, f"/tmp/outgoing/{path.name}")
        argv = ["sendmail", "-oem", "-oi", "-f", sender, "--", *recipients]
        self.box.check(f"{shlex.join(argv)} < /tmp/outgoing/msg{self._sent}")

    def queue(self) -> list[QueuedMail]:
        out = self.box.check(["postqueue", "-j"])
        mails = []
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            data = json.loads(line)
            reasons = tuple(r.get("delay_reason", "") for r in data.get("recipients", []))
            mails.append(QueuedMail(data["queue_id"], data["queue_name"], data["sender"],
                                    reasons))
        return mails

    def flush(self) -> None:
        """`postqueue -f`: attempt delivery of everything queued now."""
        self.box.check(["postqueue", "-f"])

    def log(self) -> str:
        return self.box.check(["cat", LOG]) if self.started else ""

    def master_pid(self) -> int:
        return int(self.box.check(["cat", "/var/spool/postfix/pid/master.pid"]).strip())

    def run(self, cmd: list[str] | str) -> str:
        return self.box.check(cmd)

    # -- waiting ------------------------------------------------------------------------------

    def wait(self, what: str, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        """Poll `condition` until it holds; the cell fails naming `what` (and the log) if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        tail = "\n".join(self.log().splitlines()[-8:])
        raise CheckFailed(f"timed out after {timeout:.0f}s waiting for {what}; postfix log "
                         f"ends:\n{tail}")


@contextlib.contextmanager
def relay_box(client: Any, plugin: PluginBuild, parent: Path) -> Iterator[PostfixBox]:
    """A relay container whose bind mount (a fresh dir under `parent`) holds the scratch dirs
    of the cells run in it."""
    with tempfile.TemporaryDirectory(prefix="fmh-relay-", dir=parent) as shared, PostfixBox(
        client, plugin, Path(shared)
    ) as box:
        yield box
