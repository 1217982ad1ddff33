"""The machine the harness runs on: its Debian suite and its OpenSSL, for choices and warnings.

A binary built in a container runs on the host only if the host has its libraries, and
fetchmail >= 6.4.0 also refuses a run-time OpenSSL older than the headers it was built with
("Loaded OpenSSL library 0x30000130 older than headers 0x30000140, refusing to work"), so a
binary built in an image with a newer libssl than the host's fails every TLS poll.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.build.distros import DEFAULT_DISTRO, DISTROS, Distro

OS_RELEASE = Path("/etc/os-release")
FALLBACK_DISTRO: Distro = DEFAULT_DISTRO
HOST_SUITE = "this host's suite"  # default_distro's reason when it chose the host's suite


def os_release(path: Path | None = None) -> dict[str, str]:
    """The KEY=value pairs of os-release(5) (quotes removed); {} when it cannot be read."""
    try:
        text = (path or OS_RELEASE).read_text()
    except OSError:
        return {}
    pairs = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            pairs[key.strip()] = value.strip().strip("'\"")
    return pairs


def default_distro(supported: tuple[Distro, ...] = DISTROS, path: Path | None = None
                   ) -> tuple[Distro, str]:
    """(suite, why): the host's suite when the harness builds for it, else FALLBACK_DISTRO."""
    info = os_release(path)
    codename = info.get("VERSION_CODENAME", "")
    for suite in supported:
        if suite == codename:
            return suite, HOST_SUITE
    host = " ".join(x for x in (info.get("ID", ""), codename) if x) or "unknown"
    return FALLBACK_DISTRO, f"default; this host ({host}) is no suite the harness builds for"


def openssl_number(soname: str) -> int | None:
    """OPENSSL_VERSION_NUMBER of the host's `soname` (what fetchmail compares), or None."""
    try:
        lib = ctypes.CDLL(soname)
    except OSError:
        return None
    for name in ("OpenSSL_version_num", "SSLeay"):  # 1.1+ / 1.0
        func = getattr(lib, name, None)
        if func is not None:
            func.restype = ctypes.c_ulong
            return int(func())
    return None


def libssl_warning(manifest: Mapping[str, Any], host_suite: str | None,
                   host_number: int | None = None) -> str | None:
    """What to tell a user about to run this build's raw binary on this host, or None.

    `host_number` overrides the probe of the host's library (tests); `host_suite` is the
    suite to suggest building for (None: the host is no supported suite).
    """
    ssl = manifest.get("libssl")
    if not ssl:
        return None
    soname, built = str(ssl["soname"]), int(str(ssl["headers"]), 16)
    number = openssl_number(soname) if host_number is None else host_number
    distro = manifest.get("distro")
    remedies = [f"install the package instead (`build {manifest.get('version')} --deb`, then "
                f"`apt install ./<the .deb>` on a {distro} machine: apt brings a new enough "
                f"{ssl['package']})"]
    if number is None:
        problem = f"this host has no {soname}, which the binary needs"
    elif number < built and ssl.get("refuses_older"):
        problem = (f"this host's OpenSSL {number:#x} is older than the one the binary was "
                   f"built with ({built:#x}, {ssl['package']} {ssl['version']} in the "
                   f"{distro} image); fetchmail refuses every TLS connection then (\"Loaded "
                   "OpenSSL library ... older than headers ..., refusing to work\")")
        remedies.append(f"upgrade the host's {ssl['package']} to {ssl['version']} or newer "
                        f"(`apt install {ssl['package']}`)")
    else:
        return None
    if host_suite and host_suite != distro:
        remedies.append(f"build for this host's suite (`--distro {host_suite}`)")
    elif host_suite is None:
        remedies.append("build for the suite this host follows (`--distro SUITE`)")
    return f"warning: {problem}. To run it here: " + "; or ".join(remedies) + "."
