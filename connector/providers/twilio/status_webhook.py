"""Twilio's delivery-status callbacks behind :class:`~connector.ports.StatusWebhookProvider`.

Every send asks Twilio to post status changes to ``/webhooks/twilio/status/{message_id}``
(our message id in the path, so a callback finds its message even when the send's answer
was lost). The callback is signed like an inbound webhook (HMAC-SHA1 over the public URL and
the sorted fields, with the account's auth token); a forged one leaves no trace. A verified
callback becomes one journal event keyed ``MessageSid:MessageStatus``, so a repeated
callback is a duplicate; the worker parses the journaled form again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.domain.provider_messages import StatusUpdate
from connector.errors import InvalidInputError, SignatureError
from connector.ports import AcceptedWebhook, ProviderEvent, WebhookAnswer, WebhookRequest
from connector.providers.twilio.endpoints import PROVIDER
from connector.providers.twilio.forms import parse_status_callback
from connector.providers.twilio.signature import signature_from, verify
from connector.providers.twilio.webhook import SignatureTokens, decode_form

STATUS_JOURNAL = PROVIDER + "-status"


class TwilioStatusWebhooks:
    """Verify Twilio status callbacks and journal them as events."""

    name = PROVIDER
    journal_name = STATUS_JOURNAL

    def __init__(self, tokens: SignatureTokens) -> None:
        self.tokens = tokens

    def ready(self) -> bool:
        """Whether the tokens are loaded (a call then never waits for Dataverse)."""
        return self.tokens.loaded

    def accept_status(self, request: WebhookRequest, message_id: str) -> AcceptedWebhook:
        """Verify the signature; the callback as one event keyed by provider id and status."""
        try:
            pairs = decode_form(request.body)
        except InvalidInputError:
            raise SignatureError("webhook signature does not verify") from None
        fields = dict(pairs)
        # the configuration that owns the number we sent from signs our callbacks
        tokens = self.tokens(fields.get("AccountSid"), fields.get("From"))
        verify(request.url, pairs, signature_from(request.headers), tokens)
        update = parse_status_callback(pairs)
        event_id = f"{update.provider_message_id}:{update.raw_status}"[:64]
        payload = {"message_id": message_id, "form": update.raw}
        return AcceptedWebhook(
            events=(ProviderEvent(event_id, payload),), answer=WebhookAnswer("", "text/plain")
        )

    def parse_status(self, payload: Mapping[str, Any]) -> StatusUpdate:
        """The journaled callback form as a status update."""
        form = payload.get("form")
        if not isinstance(form, Mapping):
            raise InvalidInputError("a journaled status event has no form")
        return parse_status_callback([(str(k), str(v)) for k, v in form.items()])
