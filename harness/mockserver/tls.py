"""A per-run test CA (trustme): server SSLContexts for the mock servers, a CA PEM for clients."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

import trustme

DEFAULT_NAMES = ("127.0.0.1", "::1", "localhost")


class TestCA:
    """One throwaway CA and one server certificate for the loopback names.

    `ca_path` is a PEM file clients trust (fetchmail `sslcertfile`, curl `--cacert`);
    `server_context()` is what the mock servers (and dovecot, via `cert_path`/`key_path`) use.
    """

    __test__ = False  # not a pytest class

    def __init__(self, directory: str | Path | None = None, names: tuple[str, ...] = DEFAULT_NAMES):
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fmh-ca-")
            directory = self._tmp.name
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="fetchmail-harness test CA")
        self.leaf = self.ca.issue_cert(*names, common_name="localhost")
        self.ca_path = self.directory / "ca.pem"
        self.cert_path = self.directory / "server-chain.pem"
        self.key_path = self.directory / "server-key.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        with self.cert_path.open("wb") as out:
            for blob in self.leaf.cert_chain_pems:
                out.write(blob.bytes())
        self.leaf.private_key_pem.write_to_path(str(self.key_path))
        self.key_path.chmod(0o600)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
