"""Build a :class:`~connector.dataverse.client.DataverseClient` from settings.

Called by the composition root (``connector.bootstrap``). Nothing connects here: MSAL is
created lazily on the first token request, and the ``requests.Session`` opens connections on
the first call.
"""

from __future__ import annotations

import requests

from connector.dataverse.auth import MsalTokenProvider, StaticTokenProvider, TokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.retry import RetryPolicy
from connector.dataverse.transport import WebApi
from connector.errors import ConfigurationError
from connector.settings import DataverseSettings


def build_client(
    settings: DataverseSettings,
    *,
    url: str | None = None,
    session: requests.Session | None = None,
    tokens: TokenProvider | None = None,
    retry: RetryPolicy | None = None,
) -> DataverseClient:
    """A client for the configured environment (static token, or MSAL credentials).

    ``url`` overrides the configured URL (the embedded emulator in local mode).
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
    api = WebApi(
        org_url,
        tokens,
        session or requests.Session(),
        api_version=settings.api_version,
        timeout=settings.timeout_seconds,
        max_concurrency=settings.max_concurrency,
        retry=retry or RetryPolicy.from_max_retries(settings.max_retries),
    )
    return DataverseClient(api)
