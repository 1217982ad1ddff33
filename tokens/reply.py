"""What a token endpoint reply must look like before anything from it is written."""

from __future__ import annotations

import math
from typing import Any

from tokens.http import Unusable

DEFAULT_LIFETIME = 3600.0
MAX_LIFETIME = 10 * 365 * 86400.0


def _token_problem(value: object) -> str | None:
    """Why `value` is not a usable token: a non-empty single line of visible ASCII (its
    length is bounded by http.MAX_REPLY)."""
    if not isinstance(value, str) or not value:
        return "missing or not a non-empty string"
    if not all("\x21" <= c <= "\x7e" for c in value):
        return "contains spaces, line breaks or other characters a token cannot have"
    return None


def rotated_refresh(reply: dict[str, Any]) -> str | None:
    """The reply's new refresh token, None when it has none; Unusable when it is malformed."""
    if "refresh_token" not in reply or reply["refresh_token"] in (None, ""):
        return None
    problem = _token_problem(reply["refresh_token"])
    if problem:
        raise Unusable(f"the provider's refresh_token is unusable ({problem}); nothing was saved")
    return str(reply["refresh_token"])


def access_and_lifetime(reply: dict[str, Any]) -> tuple[str, float]:
    """(access token, lifetime in seconds), or Unusable naming the bad field."""
    problem = _token_problem(reply.get("access_token"))
    if problem:
        raise Unusable(f"the provider's access_token is unusable ({problem})")
    token_type = reply.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise Unusable("the provider's token_type is not Bearer")
    raw = reply.get("expires_in", DEFAULT_LIFETIME)
    if isinstance(raw, bool):
        raw = None
    try:
        life = float(raw)  # Microsoft once sent "3599" as a string
    except (TypeError, ValueError, OverflowError):
        life = math.nan
    if not (math.isfinite(life) and 0 < life <= MAX_LIFETIME):
        raise Unusable(
            "the provider's expires_in is not a positive number of seconds "
            f"(at most {MAX_LIFETIME:.0f}): {str(raw)[:40]!r}"
        )
    return str(reply["access_token"]), life
