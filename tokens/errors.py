"""Errors that carry the exit code `fetchmail-oauth2` ends with (documented in --help)."""

from __future__ import annotations

EXIT_CODES_HELP = """\
exit codes:
  0  success (token fresh, check passed, ...)
  1  unexpected internal error
  2  bad usage or configuration (unknown key, unsafe file permissions, ...)
  3  re-authorisation needed: no refresh token, or the provider said invalid_grant
  4  provider temporarily unavailable (timeout, 5xx, 429, garbage); the old token was kept
  5  authorisation flow failed (denied, state mismatch, device code expired, ...)
  6  authentication check against the mail server failed
  7  postfix map could not be built (postmap failed)
"""


class TokenError(Exception):
    """A user-facing failure: the message says what went wrong and what to do."""

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(TokenError):
    exit_code = 2


class ReauthRequired(TokenError):
    exit_code = 3


class ProviderUnavailable(TokenError):
    exit_code = 4


class AuthFlowError(TokenError):
    exit_code = 5


class CheckFailed(TokenError):
    exit_code = 6


class PostmapError(TokenError):
    exit_code = 7
