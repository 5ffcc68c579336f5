"""Twilio's inbound webhook behind the :class:`~connector.ports.WebhookProvider` port.

Twilio posts one form per message to ``/webhooks/twilio/messages``, signed with
``X-Twilio-Signature`` (HMAC-SHA1 over the public URL and the sorted fields) and expects TwiML.
:meth:`TwilioWebhooks.accept` decodes the form (bounded), verifies the signature with every
token the message's account may use (:class:`SignatureTokens`), checks the form is a
well-formed inbound message and returns it as one event keyed by ``MessageSid``. A body that
is not a form fails as a forgery would (nothing about it is kept). The worker parses the
journaled fields again with :meth:`TwilioWebhooks.parse`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from connector.domain.model import Configuration
from connector.domain.provider_messages import InboundMessage
from connector.errors import ConnectorError, InvalidInputError, SignatureError
from connector.log_config import get_logger
from connector.ports import AcceptedWebhook, ProviderEvent, WebhookAnswer, WebhookRequest
from connector.providers.twilio.endpoints import PROVIDER
from connector.providers.twilio.forms import parse_inbound
from connector.providers.twilio.signature import signature_from, verify

log = get_logger(__name__)

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_MAX_FORM_FIELDS = 200


class SignatureTokens:
    """The Twilio auth tokens a webhook for an account may be signed with.

    The settings' token (and the simulator's in local mode), plus the token stored encrypted
    on each configuration of that account (``connector setup --auth-token``), decrypted with
    the connector's keys. Configurations come from a cache that never makes a webhook wait.
    """

    def __init__(
        self,
        static: Sequence[str],
        configurations: Callable[[], Iterable[Configuration]] | None = None,
        decrypt: Callable[[str], str] | None = None,
    ) -> None:
        self._static = list(static)
        self._configurations = configurations
        self._decrypt = decrypt
        self._plain: dict[str, str] = {}
        self._loaded = configurations is None or decrypt is None

    @property
    def loaded(self) -> bool:
        """Whether a call returns without waiting (the configurations were read once; later
        refreshes happen in the background), so the event loop may call it directly."""
        return self._loaded

    def __call__(self, account_sid: str | None) -> list[str]:
        tokens = list(self._static)
        if self._configurations is None or self._decrypt is None:
            return tokens
        configurations = self._configurations()
        self._loaded = True
        for config in configurations:
            if config.secret and (account_sid is None or config.account_id == account_sid):
                plain = self._open(config.secret)
                if plain and plain not in tokens:
                    tokens.append(plain)
        return tokens

    def _open(self, stored: str) -> str | None:
        if stored not in self._plain:
            try:
                self._plain[stored] = self._decrypt(stored) if self._decrypt else ""
            except ConnectorError:
                log.warning("webhook.token_undecryptable")  # a dropped key; never the token
                self._plain[stored] = ""
        return self._plain[stored] or None


def decode_form(body: bytes) -> list[tuple[str, str]]:
    """The form fields of a webhook body, repeated names kept (``InvalidInputError``)."""
    try:
        return parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError("webhook body is not a valid form") from exc


class TwilioWebhooks:
    """Twilio's inbound-message webhook: verify, split into one event, parse journaled ones."""

    name = PROVIDER

    def __init__(self, tokens: SignatureTokens) -> None:
        self.tokens = tokens

    def ready(self) -> bool:
        """Whether the tokens are loaded (a call then never waits for Dataverse)."""
        return self.tokens.loaded

    def accept(self, request: WebhookRequest) -> AcceptedWebhook:
        """Verify the signature over ``request.url`` and the fields; the message as one event."""
        try:
            pairs = decode_form(request.body)
        except InvalidInputError:
            raise SignatureError("webhook signature does not verify") from None  # no trace
        account = next((value for name, value in pairs if name == "AccountSid"), None)
        verify(request.url, pairs, signature_from(request.headers), self.tokens(account))
        message = parse_inbound(pairs)
        return AcceptedWebhook(
            events=(ProviderEvent(message.provider_message_id, message.raw),),
            answer=WebhookAnswer(TWIML_EMPTY, "text/xml"),
        )

    def parse(self, payload: Mapping[str, Any]) -> InboundMessage:
        """The journaled form fields as an inbound message."""
        return parse_inbound([(str(name), str(value)) for name, value in payload.items()])
