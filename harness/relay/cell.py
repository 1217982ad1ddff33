"""The relay cell kind: ``relay-DISTRO-SCENARIO``, e.g. ``relay-bookworm-rotation``.

postfix of DISTRO relays mail through mock submission servers with the XOAUTH2 plugin built
for DISTRO; SCENARIO says what the cell does and checks (harness.relay.scenarios). The build
group ``relay-DISTRO`` is the plugin build its cells share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.cell.model import DISTROS
from harness.errors import ConfigError

KIND = "relay"
SCENARIOS = ("sendmail", "rotation", "expired", "validation-down", "large-token",
             "two-senders", "password-relay")


@dataclass(frozen=True, order=True)
class RelayCell:
    distro: str
    scenario: str

    def __post_init__(self) -> None:
        if self.distro not in DISTROS:
            raise ConfigError(f"unknown distro {self.distro!r} (one of: {', '.join(DISTROS)})")
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"unknown relay scenario {self.scenario!r} (one of: "
                              f"{', '.join(SCENARIOS)})")

    @property
    def build_group(self) -> str:
        return f"{KIND}-{self.distro}"

    @property
    def identifier(self) -> str:
        return f"{self.build_group}-{self.scenario}"

    @property
    def unsupported(self) -> str | None:
        return None

    def __str__(self) -> str:
        return self.identifier

    @classmethod
    def parse(cls, identifier: str) -> RelayCell:
        kind, _, rest = identifier.strip().partition("-")
        distro, _, scenario = rest.partition("-")
        if kind != KIND or not scenario:
            raise ConfigError(f"not a relay cell identifier: {identifier!r} (expected "
                              "relay-DISTRO-SCENARIO, e.g. relay-bookworm-rotation)")
        return cls(distro, scenario)


def is_relay(identifier: str) -> bool:
    return identifier.strip().startswith(f"{KIND}-")


def relay_cells(distros: Sequence[str] = DISTROS) -> list[RelayCell]:
    """Every relay cell: each scenario on each distro."""
    return [RelayCell(distro, scenario) for distro in distros for scenario in SCENARIOS]
