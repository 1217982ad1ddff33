"""Errors that carry the exit code `fetchmail-oauth2` ends with (documented in --help)."""

from __future__ import annotations

EXIT_CODES_HELP = """\
exit codes (state shown by `status` in brackets):
  0  success (token fresh, check passed, ...)                               [active]
  1  unexpected internal error (a bug: please report it)
  2  bad usage or configuration found locally (unknown key, unsafe permissions, ...)
  3  re-authorisation needed: no refresh token, or the provider said invalid_grant,
     interaction_required (MFA), login_required or consent_required: run `authorize`
                                                                   [empty, reauth]
  4  provider temporarily unavailable (timeout, 5xx, 429, redirect, garbage); the old
     token was kept: try again later
  5  authorisation flow failed (denied, state mismatch, device code expired, ...)
  6  authentication check against the mail server failed
  7  postfix map could not be built (postmap failed)
  8  the provider refused the scope (invalid_scope): fix scope=, then `authorize`  [scope]
  9  the provider refused the client (invalid_client, unauthorized_client): fix
     client_id/client_secret/client_auth, or ask the tenant admin               [client]
 10  the provider refused the request for another reason (invalid_request, ...)  [refused]
With several accounts each is tried; the exit code is that of the first failure that
needs a person, or 4 when every failure was temporary.
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


class ScopeRefused(TokenError):
    exit_code = 8


class ClientRefused(TokenError):
    exit_code = 9


class ProviderRefused(TokenError):
    exit_code = 10


def worst_exit(codes: list[int]) -> int:
    """One exit code for several accounts: the first that needs a person, else 4, else 0."""
    for code in codes:
        if code not in (0, 4):
            return code
    return 4 if 4 in codes else 0
