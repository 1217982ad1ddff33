"""The .fetchmailrc and MDA script of a cell: keywords differ between fetchmail families."""

from __future__ import annotations

from harness.cell.mail import USER
from harness.cell.model import Cell
from harness.source.versions import Version

WORK = "/fmh"  # the cell's files in its container: rc file (fetchmail wants it root's), ids
SHARED = "/fmh-host"  # a host directory of the container's own (harness.cell.boxes) with
IN = f"{SHARED}/in"  # what the harness hands the cell: binary, passwordfile, CA, MDA script
OUT = f"{SHARED}/out"  # and where the cell's MDA delivers


def _tls_options(cell: Cell) -> tuple[str, str]:
    """(poll name, TLS keywords) for the cell's fetchmail family.

    fetchmail 7: `sslmode`. 6.4/6.5: `ssl` = implicit TLS, `sslproto` without `ssl` =
    mandatory STARTTLS. 6.3: `sslproto tls1` for STARTTLS; `sslcertfile` only since 6.3.17
    (older: a hashed `sslcertpath`), `sslcommonname` only since 6.3.9 (older: poll the name
    the certificate carries).
    """
    version = cell.version
    implicit = cell.transport == "tls"
    if cell.is_native:
        mode = "sslmode wrapped" if implicit else 'sslmode "starttls=must"'
    elif version >= Version(6, 4, 0):
        mode = "ssl sslproto 'TLS1.2+'" if implicit else "sslproto 'TLS1.2+'"
    else:
        mode = "ssl" if implicit else "sslproto tls1"
    certs = (f'sslcertfile "{IN}/ca.pem"' if version >= Version(6, 3, 17)
             else f'sslcertpath "{WORK}/certs"')
    if version >= Version(6, 3, 9):
        return "127.0.0.1", f"{mode} sslcertck {certs} sslcommonname localhost"
    return "localhost", f"{mode} sslcertck {certs}"


def rcfile(cell: Cell, port: int, *, keep: bool) -> str:
    """The .fetchmailrc of a cell (keywords differ between fetchmail families)."""
    proto = cell.protocol.upper()
    host, tls = _tls_options(cell)
    lines = [
        "set invisible",
        "set no bouncemail",
        "set no syslog",
        f"poll {host} protocol {proto} port {port} auth {cell.mechanism}",
        f'  user "{USER}" is root here',
        f'  passwordfile "{IN}/token"',  # rotated from the host while fetchmail runs
        f"  {tls}",
        f'  mda "{WORK}/deliver"',
        "  no rewrite stripcr",
        "  keep" if keep else "  no keep",
    ]
    return "\n".join(lines) + "\n"


DELIVER_SCRIPT = f"""#!/bin/sh
# one file per message, numbered in delivery order (fetchmail delivers sequentially)
n=$(ls {OUT} | wc -l)
exec cat > "{OUT}/$(printf %04d $((n + 1))).eml"
"""


def wants_keep(cell: Cell) -> bool:
    return cell.transport == "starttls" and not cell.daemon
