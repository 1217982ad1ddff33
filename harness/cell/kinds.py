"""The kinds of matrix cell: fetchmail cells (harness.cell.model) and relay cells
(harness.cell.relay). An identifier says which it is: relay cells start with ``relay-``."""

from __future__ import annotations

from harness.cell.model import Cell
from harness.cell.relay import RelayCell, is_relay

MatrixCell = Cell | RelayCell


def parse_cell(identifier: str) -> MatrixCell:
    return RelayCell.parse(identifier) if is_relay(identifier) else Cell.parse(identifier)


def kind_of(cell: MatrixCell) -> str:
    return "relay" if isinstance(cell, RelayCell) else "fetchmail"
