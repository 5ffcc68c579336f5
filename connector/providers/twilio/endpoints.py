"""Twilio's addresses: our webhook URLs as Twilio is told them, the REST API origin, and the
fixed local-mode credentials.

In local mode (no Dataverse URL) the connector talks to the bundled simulator with the fixed,
obviously fake credentials below, so ``connector simulate`` and the simulator sign and check
with the same token.
"""

from __future__ import annotations

from connector.providers.webhooks import inbound_path, public_url, status_path

PROVIDER = "twilio"
TWILIO_INBOUND_PATH = inbound_path(PROVIDER)

LOCAL_ACCOUNT_SID = "AC" + "0" * 31 + "1"
LOCAL_AUTH_TOKEN = "local-simulator-auth-token"  # noqa: S105 - a fixed fake for local mode

TWILIO_API_BASE_URL = "https://api.twilio.com"


def status_callback_url(public_base_url: str, message_id: str) -> str:
    """Where Twilio posts status callbacks for our message ``message_id``."""
    return public_url(public_base_url, status_path(PROVIDER, message_id))


def inbound_webhook_url(public_base_url: str) -> str:
    """Where Twilio posts inbound messages (configured on the number or service)."""
    return public_url(public_base_url, TWILIO_INBOUND_PATH)
