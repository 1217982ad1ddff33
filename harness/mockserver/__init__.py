"""Mock IMAP4/POP3/SMTP-submission servers with bearer-token validation, and a mock OAuth2
provider.

The mail servers: `MailServerController` (threaded asyncio server, protocol "imap", "pop3" or
"smtp"), `Mailbox` (what IMAP/POP3 serve) and `Outbox` (what SMTP accepted), validators
(`IntrospectionValidator`, `InMemoryValidator`), `Faults`, profiles (`PROFILES`), `TestCA`;
`stack.MockStack` starts provider, validator, CA and servers together.

Profiles (profiles.py): dovecot, dovecot-xoauth2, gmail, microsoft. Faults (faults.py, e.g.
`faults="validation-down"` or `--faults in-use,delay=0.1`): delay, disconnect-mid-fetch,
malformed, overlong, bad-base64, endless-continuations, early-disconnect, disconnect-after,
validation-down, in-use.
"""

from harness.mockserver.controller import MailServerController
from harness.mockserver.faults import Faults
from harness.mockserver.mailbox import Mailbox, Message, Outbox, Submission, generate_message
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
    "Outbox",
    "Profile",
    "Submission",
    "TestCA",
    "Transcript",
    "Validation",
    "Verdict",
    "generate_message",
]
