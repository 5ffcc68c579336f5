"""Build a :class:`~connector.dataverse.client.DataverseClient` from settings.

Called by the composition root (``connector.bootstrap``). Nothing connects here: MSAL is
created lazily on the first token request, and the ``requests.Session`` opens connections on
the first call. Given a :class:`~connector.ports.PacingStore` (the state store's), the
client's service protection is shared with every process of that store; without one it is
this process's alone.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import requests

from connector.dataverse.auth import MsalTokenProvider, StaticTokenProvider, TokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.pacing import PacingLaw
from connector.dataverse.protection import ServiceProtection
from connector.dataverse.retry import RetryPolicy
from connector.dataverse.transport import WebApi
from connector.errors import ConfigurationError
from connector.ports import PacingStore
from connector.settings import DataverseSettings


def build_client(
    settings: DataverseSettings,
    *,
    url: str | None = None,
    session: requests.Session | None = None,
    tokens: TokenProvider | None = None,
    retry: RetryPolicy | None = None,
    pacing: PacingStore | None = None,
) -> DataverseClient:
    """A client for the configured environment (static token, or MSAL credentials).

    ``url`` overrides the configured URL (the embedded emulator in local mode); ``pacing``
    shares the pause, pace and concurrency cap with the other processes of that store.
    """
    org_url = url or (str(settings.url) if settings.url is not None else None)
    if org_url is None:
        raise ConfigurationError("no Dataverse URL configured (local mode uses the emulator)")
    if tokens is None:
        if settings.token is not None:
            tokens = StaticTokenProvider(settings.token)
        elif settings.url is None:
            tokens = StaticTokenProvider("local-mode")
        else:
            tokens = MsalTokenProvider.from_settings(settings)
    retry = retry or RetryPolicy.from_max_retries(settings.max_retries)
    api = WebApi(
        org_url,
        tokens,
        session or requests.Session(),
        api_version=settings.api_version,
        timeout=settings.timeout_seconds,
        max_concurrency=settings.max_concurrency,
        retry=retry,
        protection=protection_for(settings, org_url, pacing, sleep=retry.sleep),
    )
    return DataverseClient(api)


def protection_for(
    settings: DataverseSettings,
    org_url: str,
    pacing: PacingStore | None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> ServiceProtection:
    """The service protection of the configured user at ``org_url`` (limits count per user:
    the key is the URL and the application's identity, never a secret)."""
    law = PacingLaw(
        initial_rate=settings.pace_start_per_second, window_seconds=settings.pace_window_seconds
    )
    return ServiceProtection(
        user_key(settings, org_url),
        pacing,
        law,
        fleet_cap=settings.max_concurrency if pacing is None else settings.fleet_max_concurrency,
        sleep=sleep,
    )


def user_key(settings: DataverseSettings, org_url: str) -> str:
    """``<org url> <identity>``: the client id, or a digest of a static token."""
    if settings.client_id:
        who = settings.client_id
    elif settings.token is not None:
        digest = hashlib.sha256(settings.token.get_secret_value().encode()).hexdigest()
        who = f"token-{digest[:16]}"
    else:
        who = "local-mode"
    return f"{org_url.rstrip('/').lower()} {who}"
