"""What the messages page is built from: :class:`PageServices` (the composition root fills it).

Each part may be left out (None): the page then says that feature is not enabled. Cookies are
signed with keys derived from the API keys, from the "Sign in with Microsoft" app's client
secret when that is configured, plus, in local mode, a random key made for the process (a
browser on loopback is signed in without a key).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import SecretStr

from connector.ports import MessageArchive, TemplateCatalog
from connector.services.consent import ConsentService
from connector.services.conversation_move import ConversationMover
from connector.services.inbox import InboxService
from connector.services.outbound import SendService
from connector.services.sessions import SessionActions
from connector.web import auth
from connector.web.microsoft import MicrosoftSignIn


@dataclass
class PageServices:
    """What the page uses, built by the composition root (None: that part is not shown)."""

    inbox: InboxService | None = None
    sender: SendService | None = None
    actions: SessionActions | None = None
    mover: ConversationMover | None = None
    consent: ConsentService | None = None
    archive: MessageArchive | None = None
    templates: TemplateCatalog | None = None
    api_keys: Sequence[SecretStr] = ()
    local_open: bool = False  # local mode: a loopback browser is signed in on its first visit
    secure_cookie: bool = False  # set the cookie's Secure flag (the public URL is https)
    local_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    microsoft: MicrosoftSignIn | None = None  # "Sign in with Microsoft" (Entra ID users)

    def keys(self) -> list[bytes]:
        """The keys a session cookie may be signed with."""
        keys = [auth.signing_key(k.get_secret_value()) for k in self.api_keys]
        if self.microsoft is not None:
            keys.append(self.microsoft.key())
        return [*keys, self.local_key] if self.local_open else keys
