"""Base images: debootstrap checks what it downloads against Debian's keyring, or fails."""

from __future__ import annotations

import pytest

from harness.build import images
from harness.errors import EngineError


def test_debootstrap_checks_the_release_signature() -> None:
    cmd = images.debootstrap_command("bookworm", "/tmp/root")
    assert f"--keyring={images.KEYRING}" in cmd and "--force-check-gpg" in cmd
    assert "--no-check-gpg" not in cmd
    assert cmd[-3:] == ["bookworm", "/tmp/root", images.MIRROR]


def test_an_unverified_bootstrap_is_an_error() -> None:
    output = ("I: Retrieving InRelease\n"
              "W: Cannot check Release signature; keyring file not available "
              "/usr/share/keyrings/debian-archive-keyring.gpg\nI: Base system installed\n")
    with pytest.raises(EngineError, match=r"not verified.*debian-archive-keyring"):
        images.check_verified("bookworm", output)
    images.check_verified("bookworm", "I: Checking Release signature\nI: Valid Release "
                          "signature (key id 4CB50190207B4758A3F73A796ED0E7B82643E131)\n")
