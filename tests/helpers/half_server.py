"""A plain-text IMAP/POP3 server that accepts any AUTHENTICATE/AUTH and then refuses the next
command, as Microsoft does for a user that does not match the token ("User is authenticated
but not connected"). Loopback only, for `check --plain`."""

from __future__ import annotations

import socketserver
import threading

REFUSAL = "User is authenticated but not connected."


class HalfServer:
    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.commands: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                (outer._imap if outer.protocol == "imap" else outer._pop3)(self)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HalfServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _lines(self, handler: socketserver.StreamRequestHandler) -> object:
        while True:
            raw = handler.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            words = line.split(" ")
            verb = words[1] if self.protocol == "imap" and len(words) > 1 else words[0]
            self.commands.append(verb.upper())
            yield line

    def _imap(self, handler: socketserver.StreamRequestHandler) -> None:
        send = lambda text: handler.wfile.write(text.encode() + b"\r\n")  # noqa: E731
        send("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER] ready")
        for line in self._lines(handler):  # type: ignore[attr-defined]
            tag, _, rest = line.partition(" ")
            verb = rest.split(" ", 1)[0].upper()
            if verb == "CAPABILITY":
                send("* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER")
                send(f"{tag} OK done")
            elif verb == "AUTHENTICATE":
                send("+ ")
                handler.rfile.readline(65536)
                send(f"{tag} OK AUTHENTICATE completed.")
            elif verb == "LOGOUT":
                send("* BYE")
                send(f"{tag} OK bye")
                return
            else:
                send(f"{tag} NO {REFUSAL}")

    def _pop3(self, handler: socketserver.StreamRequestHandler) -> None:
        send = lambda text: handler.wfile.write(text.encode() + b"\r\n")  # noqa: E731
        send("+OK ready")
        for line in self._lines(handler):  # type: ignore[attr-defined]
            verb = line.split(" ", 1)[0].upper()
            if verb == "AUTH":
                send("+OK authenticated")
            elif verb == "QUIT":
                send("+OK bye")
                return
            else:
                send(f"-ERR {REFUSAL}")
