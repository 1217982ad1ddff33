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

from dataclasses import asdict, dataclass
from typing import Any

from harness.build.container import Container
from harness.build.deb import minimum_of, shlibs_depends

REFUSAL = "older than headers"  # in fetchmail's message when run-time OpenSSL < headers
# OPENSSL_VERSION_NUMBER of the headers, as fetchmail compares it (compiled in the image)
_HEADER_PROBE = r"""cat > /tmp/osslv.c <<'END'
#include <openssl/opensslv.h>
#include <stdio.h>
int main(void) { printf("%#lx\n", (unsigned long)OPENSSL_VERSION_NUMBER); return 0; }
END
gcc -o /tmp/osslv /tmp/osslv.c && /tmp/osslv"""


# one command reads it all (each docker exec costs the engine more than what it runs): the
# sections are the binary's DT_NEEDED sonames, ldd's resolution, the owning package and its
# version of each resolved file (dpkg knows /usr/lib/... or /lib/...; with merged /usr ldd
# may print either), whether it refuses older OpenSSL, and the headers' version
_READ = r"""set -e
b="$1"
echo @@needed; objdump -p "$b" | sed -n 's/^ *NEEDED *//p'
echo @@resolved; ldd "$b" | sed -n 's/^[[:space:]]*\([^ ]*\) => \(\/[^ ]*\).*/\1 \2/p'
echo @@owners
for f in $(ldd "$b" | sed -n 's/.* => \(\/[^ ]*\).*/\1/p'); do
  for c in "$f" "$(echo "$f" | sed 's,^/usr/lib/,/lib/,')" \
           "$(echo "$f" | sed 's,^/lib/,/usr/lib/,')"; do
    if p=$(dpkg-query -S "$c" 2>/dev/null); then
      p=${p%%:*}; echo "$f $p $(dpkg-query -W -f '${Version}' "$p")"; break
    fi
  done
done
echo @@refuses; if grep -q '""" + REFUSAL + r"""' "$b"; then echo yes; else echo no; fi
echo @@headers
""" + _HEADER_PROBE + "\n"


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("@@"):
            current = sections.setdefault(line[2:].strip(), [])
        elif line.strip():
            current.append(line.strip())
    return sections


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


def _libraries(sections: dict[str, list[str]]) -> list[Library]:
    """Each DT_NEEDED soname with its file and the package that ships it."""
    paths = dict(ln.split(" ", 1) for ln in sections.get("resolved", []) if " " in ln)
    owners: dict[str, tuple[str | None, str | None]] = {}
    for line in sections.get("owners", []):
        file, package, version = [*line.split(" ", 2), "", ""][:3]
        owners[file] = (package, version or None)
    found = []
    for soname in sections.get("needed", []):
        path = paths.get(soname)
        owner, owner_version = owners.get(path or "", (None, None))
        found.append(Library(soname, path, owner, owner_version))
    return found


def inspect(box: Container, binary: str) -> dict[str, Any]:
    """{"libraries": [...], "libssl": {...} or None} for the manifest (see the module doc)."""
    sections = _sections(box.check(["sh", "-c", _READ, "sh", binary]))
    libs = _libraries(sections)
    listed = [asdict(lib) for lib in libs]
    ssl = next((lib for lib in libs if lib.soname.startswith("libssl.so")), None)
    if ssl is None or ssl.package is None or ssl.package_version is None:
        return {"libraries": listed, "libssl": None}
    version = upstream_version(ssl.package_version)
    refuses = sections.get("refuses") == ["yes"]
    # what the symbols need (dpkg-shlibdeps), or the headers' version if it refuses older
    by_symbols = None if refuses else minimum_of(shlibs_depends(box, "fetchmail", [binary]),
                                                  ssl.package)
    return {
        "libraries": listed,
        "libssl": {
            "soname": ssl.soname,
            "package": ssl.package,
            "version": version,
            "headers": " ".join(sections.get("headers", [])),
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
