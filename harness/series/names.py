"""The one pattern of a patch series name: it becomes a directory and part of cell identifiers."""

from __future__ import annotations

import re

# lowercase letters, digits, `_`, `.` and `-` (oauth63-10): a cell identifier finds the series
# between its version and its fixed trailing fields, so a `-` inside the name is fine
SERIES_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
SERIES_NAME_RULE = "lowercase letters, digits, _ . and -, starting with a letter or digit"


def is_series_name(name: str) -> bool:
    return SERIES_NAME.fullmatch(name) is not None


NATIVE_SERIES = "native"  # what fetchmail 7 (`next`) has instead of a series: OAuth built in
UNPATCHED = "upstream"  # what a release built without a series (`build --no-series`) has
