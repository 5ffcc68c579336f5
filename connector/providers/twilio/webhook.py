"""Twilio's inbound webhook behind the :class:`~connector.ports.WebhookProvider` port.

Twilio posts one form per message to ``/webhooks/twilio/messages``, signed with
``X-Twilio-Signature`` (HMAC-SHA1 over the public URL and the sorted fields) and expects TwiML.
:meth:`TwilioWebhooks.accept` decodes the form (bounded), verifies the signature with the
tokens of the configuration that owns the receiving number (``To``), never of whatever account
the form names (:class:`SignatureTokens`: the form's ``AccountSid`` must be that
configuration's account), checks the form is a well-formed inbound message and returns it as
one event keyed by ``MessageSid``. A body that
is not a form fails as a forgery would (nothing about it is kept). The worker parses the
journaled fields again with :meth:`TwilioWebhooks.parse`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from connector.domain import phone
from connector.domain.model import Configuration, Provider
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
    """The Twilio auth tokens a webhook to a number may be signed with.

    The configuration that owns the receiving number decides: its token stored encrypted
    (``connector setup --auth-token``, decrypted with the connector's keys), and the static
    tokens (the settings' token, the simulator's in local mode) whose account is that
    configuration's (or, for a configuration without a token of its own, whose account is
    not known). A form naming another account than the owner's gets no token at all: a
    webhook signed with account A's token is never accepted for account B's number. A number
    no configuration owns is checked against the static tokens only. Configurations come
    from a cache that never makes a webhook wait.
    """

    def __init__(
        self,
        static: Sequence[str],
        configurations: Callable[[], Iterable[Configuration]] | None = None,
        decrypt: Callable[[str], str] | None = None,
        *,
        static_accounts: Mapping[str, str] | None = None,
    ) -> None:
        self._static = list(static)
        self._static_accounts = dict(static_accounts or {})  # token -> account, where known
        self._configurations = configurations
        self._decrypt = decrypt
        self._plain: dict[str, str] = {}
        self._loaded = configurations is None

    @property
    def loaded(self) -> bool:
        """Whether a call returns without waiting (the configurations were read once; later
        refreshes happen in the background), so the event loop may call it directly."""
        return self._loaded

    def __call__(self, account_sid: str | None, to_number: str | None) -> list[str]:
        if self._configurations is None:
            return list(self._static)
        configurations = self._configurations()
        self._loaded = True
        owner = _owner(configurations, to_number)
        if owner is None:
            return list(self._static)
        if owner.account_id and account_sid != owner.account_id:
            return []  # the form names another account than the number's owner
        own = self._open(owner.secret) if owner.secret else None
        tokens = [own] if own else []
        for token in self._static:
            account = self._static_accounts.get(token)
            if owner.account_id is None or account == owner.account_id:
                tokens.append(token)
            elif account is None and own is None:
                tokens.append(token)  # a token of unknown account, for a config without one
        return list(dict.fromkeys(tokens))

    def _open(self, stored: str) -> str | None:
        if stored not in self._plain:
            try:
                self._plain[stored] = self._decrypt(stored) if self._decrypt else ""
            except ConnectorError:
                log.warning("webhook.token_undecryptable")  # a dropped key; never the token
                self._plain[stored] = ""
        return self._plain[stored] or None


def _owner(configurations: Iterable[Configuration], to_number: str | None) -> Configuration | None:
    """The active Twilio configuration whose sender number is ``to_number`` (E.164)."""
    if not to_number:
        return None
    twilio = [c for c in configurations if c.provider is Provider.TWILIO and c.active]
    found = next((c for c in twilio if c.sender_number == to_number), None)
    if found is not None or not twilio:
        return found
    try:  # the inbound service routes by the normalized number: so must the signature check
        wanted = phone.normalize(to_number)
    except InvalidInputError:
        return None
    return next((c for c in twilio if c.sender_number == wanted), None)


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
        first = dict(reversed(pairs))  # the first value of each field, as parse_inbound reads
        tokens = self.tokens(first.get("AccountSid"), first.get("To"))
        verify(request.url, pairs, signature_from(request.headers), tokens)
        message = parse_inbound(pairs)
        return AcceptedWebhook(
            events=(ProviderEvent(message.provider_message_id, message.raw),),
            answer=WebhookAnswer(TWIML_EMPTY, "text/xml"),
        )

    def parse(self, payload: Mapping[str, Any]) -> InboundMessage:
        """The journaled form fields as an inbound message."""
        return parse_inbound([(str(name), str(value)) for name, value in payload.items()])
