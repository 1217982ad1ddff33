"""fetchmail version names: RELEASE_6-4-33 <-> 6.4.33, 6.5.0.beta7, next."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from harness.errors import ConfigError

_RELEASE_TAG = re.compile(r"^RELEASE_(\d+)-(\d+)-(\d+)$")
_DOTTED = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:\.?(alpha|beta|rc)(\d+))?$")
_PRE_RANK = {"alpha": 0, "beta": 1, "rc": 2}
BRANCH_VERSIONS = ("next",)


@total_ordering
@dataclass(frozen=True)
class Version:
    """A fetchmail release (or the `next` branch, which sorts after every release)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, int] | None = None  # ("beta", 7) for 6.5.0.beta7
    branch: str | None = None  # "next"

    @classmethod
    def parse(cls, text: str) -> Version:
        text = text.strip()
        if text in BRANCH_VERSIONS:
            return cls(999, 0, 0, branch=text)
        m = _RELEASE_TAG.match(text)
        if m:
            return cls(int(m[1]), int(m[2]), int(m[3]))
        m = _DOTTED.match(text)
        if m:
            pre = (m[4], int(m[5])) if m[4] else None
            return cls(int(m[1]), int(m[2]), int(m[3]), pre)
        raise ConfigError(
            f"not a fetchmail version: {text!r} (expected e.g. 6.4.33, 6.5.0.beta7, "
            "RELEASE_6-4-33 or next)"
        )

    @classmethod
    def from_tag(cls, tag: str) -> Version | None:
        """The version a git tag names, or None for tags that are not releases."""
        if _RELEASE_TAG.match(tag) or (_DOTTED.match(tag) and "." in tag):
            return cls.parse(tag)
        return None

    @property
    def tag(self) -> str:
        """The git ref that holds this version."""
        if self.branch:
            return self.branch
        if self.pre:
            return str(self)
        return f"RELEASE_{self.major}-{self.minor}-{self.patch}"

    def _key(self) -> tuple[int, int, int, int, int]:
        pre_rank, pre_num = (_PRE_RANK[self.pre[0]], self.pre[1]) if self.pre else (9, 0)
        return (self.major, self.minor, self.patch, pre_rank, pre_num)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        if self.branch:
            return self.branch
        base = f"{self.major}.{self.minor}.{self.patch}"
        return f"{base}.{self.pre[0]}{self.pre[1]}" if self.pre else base
