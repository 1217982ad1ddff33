"""RFC 6238 TOTP (and RFC 4226 HOTP) codes; the secret comes from stdin, never argv."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time

ALGORITHMS = ("sha1", "sha256", "sha512")


def hotp(key: bytes, counter: int, digits: int = 6, algorithm: str = "sha1") -> str:
    mac = hmac.new(key, struct.pack(">Q", counter), getattr(hashlib, algorithm)).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(
    key: bytes,
    at: float | None = None,
    *,
    digits: int = 6,
    period: int = 30,
    algorithm: str = "sha1",
    t0: int = 0,
) -> str:
    now = time.time() if at is None else at
    return hotp(key, int((now - t0) // period), digits, algorithm)


def decode_secret(text: str, encoding: str = "base32") -> bytes:
    """Secret as authenticator apps show it (base32, spaces/case ignored), or hex/ascii."""
    cleaned = "".join(text.split())
    if not cleaned:
        raise ValueError("empty secret on stdin")
    try:
        if encoding == "base32":
            cleaned = cleaned.upper()
            return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
        if encoding == "hex":
            return bytes.fromhex(cleaned)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"secret is not valid {encoding}: {exc}") from None
    if encoding == "ascii":
        return text.rstrip("\r\n").encode("utf-8")
    raise ValueError(f"unknown secret encoding {encoding!r}")
