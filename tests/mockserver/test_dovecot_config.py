"""The Dovecot configuration a DovecotInstance writes names only files under its root, so a
Dovecot container that mounts just the root (the matrix's `-dovecot` cells) can read them."""

from __future__ import annotations

import re
from pathlib import Path

from harness.mockserver.dovecot import DovecotInstance
from harness.mockserver.tls import TestCA


def test_tls_files_are_read_from_the_root(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")  # outside the instance's root, as a cell's CA is
    dovecot = DovecotInstance("http://127.0.0.1:9/introspect", "cid", "secret", "user",
                              tls=ca, image="unused:image")  # not started
    try:
        config = dovecot.config_path.read_text()
        files = [Path(p) for p in re.findall(r"<\s*(\S+)", config)]
        assert any(p.name == "cert.pem" for p in files), config
        for path in files:
            assert path.is_relative_to(dovecot.root) and path.is_file(), (path, config)
        assert str(tmp_path / "ca") not in config
    finally:
        dovecot.cleanup()
