"""The one authentication path of IMAP AUTHENTICATE, POP3 AUTH and SMTP AUTH.

Decode the initial response, run the mechanism over the session's conversation, apply the
faults, note the outcome; the session then sends `profile.reply(protocol, outcome)`.
"""

from __future__ import annotations

from harness.mockserver.profiles import Outcome
from harness.mockserver.sasl import (
    MECHANISMS,
    AuthContext,
    AuthResult,
    SaslAborted,
    SaslBadBase64,
)
from harness.mockserver.session import ENDLESS_ROUNDS, LineSession, decode_sasl


async def authenticate(session: LineSession, mechanism: str, initial: str | None) -> AuthResult:
    """`initial` is the initial response as sent (base64, "=" for empty), None if absent."""
    result = await _run(session, mechanism.upper(), initial)
    if result.outcome is Outcome.OK and session.faults.in_use:
        result = AuthResult(Outcome.IN_USE, result.user, "fault: mailbox in use")
    session.transcript.note(f"auth {result.outcome.value}: {result.reason}")
    return result


async def _run(session: LineSession, name: str, initial: str | None) -> AuthResult:
    if name not in session.offered_mechanisms():
        return AuthResult(Outcome.UNSUPPORTED, reason=f"{name} not offered")
    data = None
    if initial is not None:
        session.check_sasl_size(len(initial))
        try:
            data = decode_sasl(initial.encode())
        except (SaslAborted, SaslBadBase64):
            return AuthResult(Outcome.BAD_INITIAL, reason="initial response is not base64")
    if session.faults.endless_continuations:
        for _ in range(ENDLESS_ROUNDS):
            await session.send(session.continuation)
            await session.read_line()
        await session.cut_connection("endless continuations exhausted")
    ctx = AuthContext(
        conversation=session,
        validate_bearer=session.validate_bearer,
        check_password=session.check_password,
        profile=session.profile,
        scope=session.config.scope,
        transcript=session.transcript,
    )
    try:
        return await MECHANISMS[name].authenticate(ctx, data)
    except SaslAborted:
        return AuthResult(Outcome.ABORTED, reason="client aborted")
    except SaslBadBase64 as exc:
        return AuthResult(Outcome.BAD_BASE64, reason=str(exc))
