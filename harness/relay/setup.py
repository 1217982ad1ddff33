"""postfix's relay configuration for a cell: exactly what `fetchmail-oauth2 example postfix`
prints for the cell's accounts, plus (password-relay cells) the second transport of the
README's recipe for mixing a password relay with the OAuth one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.relay.world import World

_SECTION = re.compile(r"^# --- (?P<name>\S+) ---$")
TABLES = ("tls_policy", "relayhost_map")  # map files the user writes once (then postmap)

# The README's recipe for a password relay beside the OAuth one: a second smtp transport with
# its own mechanisms and password map, chosen per sender.
PASSWORD_TRANSPORT = """\
smtp-password unix  -       -       y       -       -       smtp
  -o syslog_name=postfix/smtp-password
  -o smtp_sasl_mechanism_filter=plain,login
  -o smtp_sasl_security_options=noanonymous
  -o smtp_sasl_password_maps=hash:{shared}/password_passwd
"""


@dataclass(frozen=True)
class PostfixSetup:
    main_cf: str
    master_cf: str
    tables: dict[str, str]  # absolute path -> content (each postmapped)
    printed: str  # what `example postfix` printed, for the cell log


def parse_sections(text: str) -> dict[str, list[str]]:
    """`# --- NAME ---` opens a section; the lines up to the next one are its lines."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        m = _SECTION.match(line)
        if m:
            current = sections.setdefault(m["name"], [])
        elif current is not None:
            current.append(line)
    return sections


def postfix_setup(world: World, password_senders: dict[str, tuple[str, str]] | None = None,
                  ) -> PostfixSetup:
    """The cell's main.cf/master.cf additions and tables.

    `password_senders`: sender -> (relay key, "user:password") for the password transport.
    """
    printed = world.example("postfix", "--postfix-map", str(world.map_path))
    sections = parse_sections(printed)
    missing = [s for s in ("main.cf", *TABLES) if s not in sections]
    if missing:
        raise HarnessError(f"`example postfix` printed no {', '.join(missing)} section:\n"
                           f"{printed[-1500:]}")
    main_cf = "\n".join(sections["main.cf"]) + "\n"
    master_cf = "\n".join(sections.get("master.cf", [])) + "\n"
    tables = {str(world.shared / name): "\n".join(sections[name]) + "\n" for name in TABLES}
    if password_senders:
        main_cf += (f"sender_dependent_default_transport_maps = "
                    f"hash:{world.shared}/sender_transport\n")
        master_cf += PASSWORD_TRANSPORT.format(shared=world.shared)
        tables[str(world.shared / "sender_transport")] = "".join(
            f"{sender} smtp-password:\n" for sender in password_senders)
        tables[str(world.shared / "relayhost_map")] += "".join(
            f"{sender} {relay}\n" for sender, (relay, _) in password_senders.items())
        tables[str(world.shared / "tls_policy")] += "".join(
            f"{relay} encrypt\n" for relay, _ in password_senders.values())
        tables[str(world.shared / "password_passwd")] = "".join(
            f"{sender} {login}\n" for sender, (_, login) in password_senders.items())
    return PostfixSetup(main_cf, master_cf, tables, printed)
