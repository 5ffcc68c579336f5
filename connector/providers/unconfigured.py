"""The provider of a process that has no provider credentials (an inbound-only deployment).

Sends are still accepted and wait in the outbox, each showing why (``GET /api/v1/messages``
gives the reason): every call fails as a transient provider error naming what to set. The
process starts and receives messages as before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from connector.domain.provider_messages import (
    CredentialReport,
    InboundMessage,
    SendRequest,
    SendResult,
    StatusUpdate,
)
from connector.errors import ProviderError
from connector.ports import SmsProvider, WebhookParams


class UnconfiguredProvider:
    """Refuses every call with a transient error carrying ``reason``."""

    name = "unconfigured"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _error(self) -> ProviderError:
        return ProviderError(self.reason, code="provider_not_configured", transient=True)

    def send(self, request: SendRequest) -> SendResult:
        """Never sends: the message waits until credentials are configured."""
        raise self._error()

    def find_sent(
        self, request: SendRequest, since: float, exclude: Collection[str]
    ) -> SendResult | None:
        """Cannot ask anyone."""
        raise self._error()

    def parse_inbound(self, form: WebhookParams) -> InboundMessage:
        """Not a provider webhooks come from."""
        raise self._error()

    def parse_status(self, form: WebhookParams) -> StatusUpdate:
        """Not a provider webhooks come from."""
        raise self._error()

    def verify_signature(
        self, url: str, params_or_body: WebhookParams | str | bytes, headers: Mapping[str, str]
    ) -> None:
        """Nothing verifies against no credentials."""
        raise self._error()

    def validate_credentials(self) -> CredentialReport:
        """There are none."""
        raise self._error()


def _conforms(provider: UnconfiguredProvider) -> SmsProvider:
    """mypy checks the class against the port here."""
    return provider
