"""Twilio's credential policy, wired from settings: which tokens verify webhooks, which
credentials download MMS media, and the webhook provider built on them.

In local mode with no token configured the simulator's fixed fake credentials are accepted
(local mode listening beyond loopback configures a random one instead); tokens stored
encrypted on configurations (``connector setup --auth-token``) are added per account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from connector.domain.model import Configuration
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.providers.twilio.media import TWILIO_MEDIA_ORIGIN, ProviderMediaFetcher
from connector.providers.twilio.webhook import SignatureTokens, TwilioWebhooks
from connector.secret_box import SecretBox
from connector.settings import Settings


def auth_tokens(settings: Settings) -> Sequence[str]:
    """Twilio tokens a webhook signature may be made with: the configured one, else in local
    mode the simulator's published one."""
    if settings.twilio.auth_token is not None:
        return [settings.twilio.auth_token.get_secret_value()]
    return [LOCAL_AUTH_TOKEN] if settings.local_mode else []


def token_accounts(settings: Settings) -> dict[str, str]:
    """The account each static token belongs to, where the settings say."""
    accounts = {}
    if settings.twilio.auth_token is not None and settings.twilio.account_sid:
        accounts[settings.twilio.auth_token.get_secret_value()] = settings.twilio.account_sid
    if settings.local_mode:
        accounts.setdefault(LOCAL_AUTH_TOKEN, LOCAL_ACCOUNT_SID)
    return accounts


def signature_tokens(
    settings: Settings, configurations: Callable[[], Iterable[Configuration]]
) -> SignatureTokens:
    """The tokens a Twilio webhook may be signed with: those of the configuration that owns
    the number it concerns (stored encrypted on it), and the settings' for that account."""
    box = SecretBox(settings.secret_keys) if settings.secret_keys else None
    return SignatureTokens(
        auth_tokens(settings),
        configurations,
        box.decrypt if box is not None else None,
        static_accounts=token_accounts(settings),
    )


def twilio_webhooks(
    settings: Settings, configurations: Callable[[], Iterable[Configuration]]
) -> TwilioWebhooks:
    """Twilio's webhook provider: tokens of the configuration owning the receiving number."""
    return TwilioWebhooks(signature_tokens(settings, configurations))


def media_fetcher(settings: Settings, extra_origins: Sequence[str] = ()) -> ProviderMediaFetcher:
    """Media downloads from Twilio (and the configured simulator host) with our credentials."""
    twilio = settings.twilio
    sid = twilio.account_sid or (LOCAL_ACCOUNT_SID if settings.local_mode else None)
    token = twilio.auth_token.get_secret_value() if twilio.auth_token else None
    if token is None and settings.local_mode:
        token = LOCAL_AUTH_TOKEN
    origins = [TWILIO_MEDIA_ORIGIN, *extra_origins]
    if twilio.api_base_url is not None:
        origins.append(str(twilio.api_base_url))

    def credentials(account_id: str) -> tuple[str, str] | None:
        return (account_id, token) if sid and token and account_id == sid else None

    return ProviderMediaFetcher(credentials, origins)
