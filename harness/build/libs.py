"""What a built binary needs at run time, read in its build container (for the manifest).

- `libraries`: each DT_NEEDED soname, the file it resolves to and the Debian package (with
  version) that ships it in the build image.
- `libssl`: the OpenSSL the binary was compiled against: its package, the package's upstream
  version, OPENSSL_VERSION_NUMBER of the headers, and whether the binary refuses a run-time
  library older than those headers (fetchmail >= 6.4.0 does: "Loaded OpenSSL library ... older
  than headers ..., refusing to work"). Then that version is the minimum the binary runs with,
  whatever its symbols say. `minimum` is the version it needs at least: that one, or what
  its symbols need (dpkg-shlibdeps) when it accepts an older library.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from harness.build.container import CommandFailed, Container
from harness.build.deb import minimum_of, shlibs_depends

REFUSAL = "older than headers"  # in fetchmail's message when run-time OpenSSL < headers
# OPENSSL_VERSION_NUMBER of the headers, as fetchmail compares it (compiled in the image)
_HEADER_PROBE = r"""cat > /tmp/osslv.c <<'END'
#include <openssl/opensslv.h>
#include <stdio.h>
int main(void) { printf("%#lx\n", (unsigned long)OPENSSL_VERSION_NUMBER); return 0; }
END
gcc -o /tmp/osslv /tmp/osslv.c && /tmp/osslv"""


def needed(box: Container, binary: str) -> list[str]:
    """The DT_NEEDED sonames of `binary`, in order."""
    dump = box.check(["objdump", "-p", binary])
    return re.findall(r"^\s*NEEDED\s+(\S+)", dump, re.MULTILINE)


def _resolved(box: Container, binary: str) -> dict[str, str]:
    """soname -> resolved path, from ldd."""
    out = box.check(["ldd", binary])
    return dict(re.findall(r"^\s*(\S+) => (/\S+)", out, re.MULTILINE))


def _owner(box: Container, path: str) -> tuple[str, str] | None:
    """(package, version) that ships `path`, or None (e.g. a file outside any package)."""
    # dpkg knows /usr/lib/... or /lib/...; with merged /usr ldd may print either
    for candidate in dict.fromkeys([path, re.sub(r"^/usr/lib/", "/lib/", path),
                                    re.sub(r"^/lib/", "/usr/lib/", path)]):
        try:
            found = box.check(["dpkg-query", "-S", candidate])
        except CommandFailed:
            continue
        package = found.split(":", 1)[0].strip()
        version = box.check(["dpkg-query", "-W", "-f", "${Version}", package]).strip()
        return package, version
    return None


def upstream_version(version: str) -> str:
    """'1:3.0.20-1~deb12u2' -> '3.0.20' (no epoch, no Debian revision)."""
    version = version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


@dataclass(frozen=True)
class Library:
    soname: str
    path: str | None
    package: str | None
    package_version: str | None


def libraries(box: Container, binary: str) -> list[Library]:
    """Each DT_NEEDED soname of `binary` with its file and the package that ships it."""
    paths = _resolved(box, binary)
    found = []
    for soname in needed(box, binary):
        path = paths.get(soname)
        owner = _owner(box, path) if path else None
        found.append(Library(soname, path, *(owner or (None, None))))
    return found


def inspect(box: Container, binary: str) -> dict[str, Any]:
    """{"libraries": [...], "libssl": {...} or None} for the manifest (see the module doc)."""
    libs = libraries(box, binary)
    listed = [asdict(lib) for lib in libs]
    ssl = next((lib for lib in libs if lib.soname.startswith("libssl.so")), None)
    if ssl is None or ssl.package is None or ssl.package_version is None:
        return {"libraries": listed, "libssl": None}
    version = upstream_version(ssl.package_version)
    refuses = box.run(["grep", "-q", REFUSAL, binary]) == 0
    # what the symbols need (dpkg-shlibdeps), or the headers' version if it refuses older
    by_symbols = minimum_of(shlibs_depends(box, "fetchmail", [binary]), ssl.package)
    return {
        "libraries": listed,
        "libssl": {
            "soname": ssl.soname,
            "package": ssl.package,
            "version": version,
            "headers": box.check(["sh", "-c", _HEADER_PROBE]).strip(),
            "refuses_older": refuses,
            "minimum": version if refuses else by_symbols,
        },
    }


def minimum_libssl(manifest: dict[str, Any]) -> tuple[str, str] | None:
    """(package, version): the libssl the binary needs at least (see inspect)."""
    ssl = manifest.get("libssl")
    if not ssl or not ssl.get("minimum"):
        return None
    return str(ssl["package"]), str(ssl["minimum"])
