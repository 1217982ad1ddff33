"""The relay cell kind: ``relay-DISTRO-SCENARIO``, e.g. ``relay-bookworm-rotation``.

postfix of DISTRO relays mail through mock submission servers with the XOAUTH2 plugin built
for DISTRO; SCENARIO says what the cell does and checks (harness.relay.scenarios runs it).
The build group ``relay-DISTRO`` is the plugin build its cells share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from harness.build.distros import DISTROS, Distro
from harness.cell.model import one_of
from harness.errors import ConfigError

KIND = "relay"
Scenario = Literal["sendmail", "rotation", "expired", "validation-down", "large-token",
                   "two-senders", "password-relay"]
SCENARIOS: tuple[Scenario, ...] = get_args(Scenario)


@dataclass(frozen=True, order=True)
class RelayCell:
    distro: Distro
    scenario: Scenario

    def __post_init__(self) -> None:
        # the Literal types hold for cells made in code; identifiers come from users
        one_of("distro", self.distro, DISTROS)
        one_of("relay scenario", self.scenario, SCENARIOS)

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
        return cls(one_of("distro", distro, DISTROS),
                   one_of("relay scenario", scenario, SCENARIOS))


def is_relay(identifier: str) -> bool:
    return identifier.strip().startswith(f"{KIND}-")


def relay_cells(distros: Sequence[Distro] = DISTROS) -> list[RelayCell]:
    """Every relay cell: each scenario on each distro."""
    return [RelayCell(distro, scenario) for distro in distros for scenario in SCENARIOS]
