"""The config file's syntax: `key = value` lines, `#` comments, optional `[account]` sections.

- A line whose first non-blank character is `#` is a comment; so is everything after a `#`
  that follows whitespace (`scope = mail  # the default`). A `#` inside a word is kept
  (`client_secret=ab#cd`). To keep ` #` in a value, double-quote the whole value:
  `client_secret = "ab #cd"` (inside the quotes `\\"` is a quote and `\\\\` a backslash).
- A UTF-8 byte-order mark at the start is ignored.
- `[name]` starts an account section; lines before the first section are defaults every
  section inherits. A file without sections is one account.
- Errors name the line but never echo a value: a malformed line may hold a secret.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from tokens.errors import ConfigError

SECTION_RE = re.compile(r"^\[([A-Za-z0-9@._+-]+)\]$")
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
COMMENT_RE = re.compile(r"\s#")

Values = dict[str, tuple[int, str]]  # key -> (line number, value)


def _unquote(path: Path, lineno: int, raw: str) -> str:
    """A double-quoted value, up to its closing quote; after it only a comment may follow."""
    out: list[str] = []
    i = 1
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw) and raw[i + 1] in '"\\':
            out.append(raw[i + 1])
            i += 2
            continue
        if ch == '"':
            rest = raw[i + 1 :].strip()
            if rest and not rest.startswith("#"):
                raise ConfigError(f"{path}:{lineno}: text after the closing quote")
            return "".join(out)
        out.append(ch)
        i += 1
    raise ConfigError(f"{path}:{lineno}: the quoted value has no closing quote")


def _value(path: Path, lineno: int, raw: str) -> str:
    raw = raw.strip()
    if raw.startswith('"'):
        return _unquote(path, lineno, raw)
    comment = COMMENT_RE.search(raw)
    return (raw[: comment.start()] if comment else raw).rstrip()


def parse_sections(
    path: Path, text: str, known: Collection[str]
) -> tuple[Values, dict[str, Values]]:
    """(defaults, {section: values}); duplicate keys and sections are errors. `known` keys
    may be named in a hint (any other word of a malformed line may be a secret)."""
    text = text.removeprefix("\ufeff")
    defaults: Values = {}
    sections: dict[str, Values] = {}
    current = defaults
    section_line: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            header = SECTION_RE.match(_value(path, lineno, line))
            if not header:
                raise ConfigError(
                    f"{path}:{lineno}: a section header is `[name]` (letters, digits, @._+-)"
                )
            name = header.group(1)
            if name in sections:
                raise ConfigError(
                    f"{path}:{lineno}: section [{name}] given twice "
                    f"(first on line {section_line[name]})"
                )
            sections[name], section_line[name] = {}, lineno
            current = sections[name]
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not KEY_RE.match(key):
            lead = re.match(r"[A-Za-z_][A-Za-z0-9_]*", line)
            named = lead.group(0) if lead and lead.group(0) in known else None
            hint = f" (did you mean `{named} = ...`?)" if named else ""
            raise ConfigError(
                f"{path}:{lineno}: expected `key = value`{hint}; the line is not shown "
                "because it may hold a secret"
            )
        if key in current:
            raise ConfigError(
                f"{path}:{lineno}: {key!r} given twice (first on line {current[key][0]})"
            )
        current[key] = (lineno, _value(path, lineno, value))
    return defaults, sections
