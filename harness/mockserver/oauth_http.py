"""The mock provider's HTTP side: routing, form/Basic parsing, and the injected misbehaviours."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from harness.mockserver.oauth_records import Fault, OAuthError

if TYPE_CHECKING:
    from harness.mockserver.oauth_grants import Grants

CHUNK = 65536


class ProviderServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its provider (and when it is stopping)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], provider: Grants, stopping: threading.Event
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.provider, self.stopping = provider, stopping
        super().__init__(address, ProviderHandler)


class ProviderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MockOAuth/1.0"
    server: ProviderServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read counters, not logs

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ---- request parsing ------------------------------------------------------------------
    def _basic(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = raw.partition(":")
        # RFC 6749 2.3.1: both parts are form-urlencoded before base64
        return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)

    def _params(self, method: str) -> dict[str, str]:
        query = urllib.parse.urlsplit(self.path).query
        params = dict(urllib.parse.parse_qsl(query))
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            params.update(urllib.parse.parse_qsl(body))
        return params

    # ---- dispatch -------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        provider = self.server.provider
        endpoint = urllib.parse.urlsplit(self.path).path.strip("/")
        params = self._params(method)
        with provider.lock:
            provider.counts[endpoint] += 1
            provider.log.append((endpoint, dict(params)))
            provider.headers_seen.append((endpoint, dict(self.headers.items())))
            fault = provider.take_fault(endpoint)
        try:
            if fault is not None and self._apply_fault(fault, method, endpoint, params):
                return
            status, body, headers = self._answer(method, endpoint, params)
        except OAuthError as exc:
            status, body, headers = exc.status, _error_body(exc.error, exc.description), {}
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up (e.g. on an oversized reply)
            return
        except Exception as exc:  # a bug in the mock: answer, and let tests see it
            with provider.lock:
                provider.errors.append(f"{endpoint}: {type(exc).__name__}: {exc}")
            status, body, headers = 500, _error_body("server_error", "mock bug"), {}
        if isinstance(body, bytes):  # text answers of /authorize and /device/approve
            self._send(status, body, "text/plain", headers)
            return
        if fault is not None and fault.kind == "mangle":
            self._send(status, _mangled(body, fault.fields), "application/json", _NO_STORE)
        elif fault is not None and fault.kind == "trickle":
            self._trickle(status, json.dumps(body).encode(), fault.delay or 1.0)
        else:
            self._json(status, body)

    def _answer(
        self, method: str, endpoint: str, params: dict[str, str]
    ) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        """(status, JSON object or plain text, extra headers) from the grant logic."""
        provider = self.server.provider
        basic = self._basic()
        if endpoint == "authorize" and method == "GET":
            status, text = provider.handle_authorize(params)
            if status == 302:
                return 302, b"", {"Location": text}
            return status, text.encode(), {}
        if endpoint == "token" and method == "POST":
            return 200, provider.handle_token(params, basic), {}
        if endpoint == "device" and method == "POST":
            return 200, provider.handle_device(params, basic), {}
        if endpoint == "device/approve":
            try:
                provider.approve_device(params.get("user_code", ""), params.get("user"))
            except KeyError:
                return 404, b"unknown user_code\n", {}
            return 200, b"approved\n", {}
        if endpoint == "introspect" and method == "POST":
            return 200, provider.handle_introspect(params, basic), {}
        if endpoint == "revoke" and method == "POST":
            return 200, provider.handle_revoke(params, basic), {}
        if endpoint == "elsewhere":
            return 200, provider.handle_elsewhere(), {}
        return 404, b"not found\n", {}

    # ---- misbehaviour ---------------------------------------------------------------------
    def _apply_fault(
        self, fault: Fault, method: str, endpoint: str, params: dict[str, str]
    ) -> bool:
        """Returns True when the fault replaced the answer (mangle/trickle/delay do not)."""
        stopping = self.server.stopping
        if fault.kind in ("delay", "mangle", "trickle"):
            if fault.kind == "delay":
                stopping.wait(fault.delay)
            return False
        if fault.kind == "timeout":
            stopping.wait(fault.delay)
            self.close_connection = True
            return True
        if fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if fault.kind == "invalid_json":
            self._send(200, (fault.body or "<html>not json").encode(), "application/json")
            return True
        if fault.kind == "redirect":
            target = fault.location or self._own_url() + "/elsewhere"
            self._send(fault.status, b"", "text/plain", {"Location": target})
            return True
        if fault.kind == "oversized":
            self._oversized(fault.size, fault.declare_length)
            return True
        if fault.kind == "error":
            self._json(fault.status, _error_body(fault.error, fault.description))
            return True
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.body is not None:
            self._send(fault.status, fault.body.encode(), "text/plain", headers)
        else:
            self._json(fault.status, _error_body("temporarily_unavailable", "injected"), headers)
        return True

    def _own_url(self) -> str:
        host, port = str(self.server.server_address[0]), self.server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def _oversized(self, size: int, declare_length: bool) -> None:
        """A 200 JSON reply whose access_token is `size` bytes, streamed in chunks (with a
        Content-Length, or delimited by closing the connection)."""
        head, tail = b'{"token_type":"Bearer","expires_in":3600,"access_token":"', b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if declare_length:
            self.send_header("Content-Length", str(len(head) + size + len(tail)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(head)
        left = size
        while left > 0:
            n = min(left, CHUNK)
            self.wfile.write(b"A" * n)
            left -= n
        self.wfile.write(tail)

    def _trickle(self, status: int, payload: bytes, every: float) -> None:
        """Status line, headers and body one byte at a time (until the client gives up)."""
        head = (
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.close_connection = True
        stopping = self.server.stopping
        with contextlib.suppress(OSError):
            for byte in head + payload:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if stopping.wait(every):
                    return

    # ---- output ---------------------------------------------------------------------------
    def _json(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        extra = {**_NO_STORE, **(headers or {})}
        self._send(status, json.dumps(body).encode(), "application/json", extra)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


_NO_STORE = {"Cache-Control": "no-store"}


def _error_body(error: str, description: str) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error}
    if description:
        body["error_description"] = description
    return body


def _mangled(body: Mapping[str, Any], fields: Mapping[str, str]) -> bytes:
    """`body` as JSON with each of `fields` set to raw JSON text (`NaN`, `1e400`, `"a\\nb"`)."""
    parts = [
        f"{json.dumps(key)}: {fields[key] if key in fields else json.dumps(value)}"
        for key, value in body.items()
    ]
    parts += [f"{json.dumps(key)}: {raw}" for key, raw in fields.items() if key not in body]
    return ("{" + ", ".join(parts) + "}").encode()
