"""What the provider adapters share: the webhook paths, callback URLs, local-mode credentials.

The webhook paths are part of the product (design section 8). In local mode (no Dataverse
URL) the connector talks to the bundled simulator with the fixed, obviously fake credentials
below, so ``connector simulate`` and the simulator sign and check with the same token.
"""

from __future__ import annotations

from urllib.parse import quote

from connector.providers.twilio.signature import public_url

TWILIO_INBOUND_PATH = "/webhooks/twilio/messages"
TWILIO_STATUS_PATH = "/webhooks/twilio/status/{message_id}"

LOCAL_ACCOUNT_SID = "AC" + "0" * 31 + "1"
LOCAL_AUTH_TOKEN = "local-simulator-auth-token"  # noqa: S105 - a fixed fake for local mode

TWILIO_API_BASE_URL = "https://api.twilio.com"


def status_callback_url(public_base_url: str, message_id: str) -> str:
    """Where the provider posts status callbacks for our message ``message_id``."""
    path = TWILIO_STATUS_PATH.format(message_id=quote(message_id, safe=""))
    return public_url(public_base_url, path)


def inbound_webhook_url(public_base_url: str) -> str:
    """Where the provider posts inbound messages (configured on the number or service)."""
    return public_url(public_base_url, TWILIO_INBOUND_PATH)
