"""Mock IMAP4/POP3 server with bearer-token validation, and a mock OAuth2 provider.

The mail server: `MailServerController` (threaded asyncio server), `Mailbox` (shared state),
validators (`IntrospectionValidator`, `InMemoryValidator`), `Faults`, `TestCA`.
"""

from harness.mockserver.controller import MailServerController
from harness.mockserver.faults import Faults
from harness.mockserver.mailbox import Mailbox, Message, generate_message
from harness.mockserver.profiles import PROFILES, Profile
from harness.mockserver.tls import TestCA
from harness.mockserver.transcript import Transcript
from harness.mockserver.validators import (
    BearerValidator,
    InMemoryValidator,
    IntrospectionValidator,
    Validation,
    Verdict,
)

__all__ = [
    "PROFILES",
    "BearerValidator",
    "Faults",
    "InMemoryValidator",
    "IntrospectionValidator",
    "MailServerController",
    "Mailbox",
    "Message",
    "Profile",
    "TestCA",
    "Transcript",
    "Validation",
    "Verdict",
    "generate_message",
]
