"""A small threaded SMTP AUTH server (XOAUTH2/OAUTHBEARER, STARTTLS or implicit TLS) for `check`.

Bearer tokens are judged by the mock provider, like the mail-server helper's IMAP/POP3 servers.
"""

from __future__ import annotations

import base64
import json
import socketserver
import ssl
import threading
from collections.abc import Callable
from typing import BinaryIO

Validate = Callable[[str, str], bool]


def parse_bearer(mechanism: str, raw: bytes) -> tuple[str, str] | None:
    text = raw.decode("utf-8", "replace")
    fields = text.split("\x01")
    user = None
    if mechanism == "XOAUTH2" and fields[0].startswith("user="):
        user = fields[0][5:]
    if mechanism == "OAUTHBEARER" and fields[0].startswith("n,a="):
        user = fields[0][4:].rstrip(",")
    token = next((f[12:] for f in fields if f.startswith("auth=Bearer ")), None)
    return (user, token) if user and token else None


class SmtpServer:
    def __init__(
        self,
        validate: Validate,
        context: ssl.SSLContext,
        implicit: bool,
        *,
        fail_after_auth: bool = False,
    ) -> None:
        """fail_after_auth: accept AUTH, then answer the next command 421 (as a server that
        took a mismatched user at AUTH would)."""
        self.validate, self.context, self.implicit = validate, context, implicit
        self.fail_after_auth = fail_after_auth
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                outer.session(self)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SmtpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def session(self, handler: socketserver.StreamRequestHandler) -> None:
        conn = handler.connection
        tls = self.implicit
        if tls:
            conn = self.context.wrap_socket(conn, server_side=True)
        rfile: BinaryIO = conn.makefile("rb")
        send: Callable[[str], None] = lambda line: conn.sendall(line.encode() + b"\r\n")  # noqa: E731
        send("220 mock ESMTP")
        authenticated = False
        while True:
            line = rfile.readline(65536).decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                return
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if authenticated and self.fail_after_auth:
                send("421 4.7.0 authenticated but not connected")
                return
            if verb in ("EHLO", "HELO"):
                caps = ["mock", "AUTH XOAUTH2 OAUTHBEARER"] + ([] if tls else ["STARTTLS"])
                for cap in caps[:-1]:
                    send(f"250-{cap}")
                send(f"250 {caps[-1]}")
            elif verb == "STARTTLS" and not tls:
                send("220 2.0.0 go ahead")
                conn = self.context.wrap_socket(conn, server_side=True)
                rfile = conn.makefile("rb")
                tls = True
            elif verb == "AUTH" and tls:
                mech, _, initial = arg.partition(" ")
                if not initial:
                    send("334 ")
                    initial = rfile.readline().decode().strip()
                parsed = parse_bearer(mech.upper(), base64.b64decode(initial))
                if parsed and self.validate(*parsed):
                    send("235 2.7.0 Authentication successful")
                    authenticated = True
                    continue
                error = json.dumps({"status": "invalid_token", "schemes": "bearer"})
                send("334 " + base64.b64encode(error.encode()).decode())
                rfile.readline()  # the client's empty response
                send("535 5.7.8 Authentication credentials invalid")
            elif verb == "QUIT":
                send("221 2.0.0 bye")
                return
            else:
                send("502 5.5.2 not here")
