"""The verdict of one matrix cell: pass / fail (checks) / error (infrastructure) / skip."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.cell.kinds import MatrixCell, parse_cell

Outcome = Literal["pass", "fail", "error", "skip"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "error", "skip")


@dataclass
class CellResult:
    cell: MatrixCell
    outcome: Outcome
    reason: str = ""  # why it failed / errored / was skipped; empty on pass
    duration: float = 0.0  # seconds spent running it (the original run, for cached results)
    log: str | None = None  # path of the per-cell log
    cached: bool = False  # taken from the result cache, not rerun
    key: str = ""  # result-cache key (content of the inputs)
    build_key: str = ""
    binary: str | None = None
    checks: list[str] = field(default_factory=list)  # what was verified, one line each

    @property
    def ok(self) -> bool:
        return self.outcome in ("pass", "skip")

    @property
    def identifier(self) -> str:
        return self.cell.identifier

    def summary(self) -> str:
        """One line for a list of cells that did not pass: outcome, cell, reason, log."""
        where = f"  [log: {self.log}]" if self.log else ""
        return f"{self.outcome.upper()} {self.identifier}: {self.reason}{where}"

    def to_json(self) -> dict[str, Any]:
        """The result as JSON, the cell as its identifier."""
        return {**asdict(self), "cell": self.identifier}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellResult:
        if data.get("outcome") not in OUTCOMES:
            raise ValueError(f"bad outcome in cached result: {data.get('outcome')!r}")
        known = set(cls.__dataclass_fields__)
        fields = {k: v for k, v in data.items() if k in known}
        fields["cell"] = parse_cell(str(data.get("cell", "")))
        return cls(**fields)
