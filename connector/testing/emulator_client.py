"""A real Dataverse client pointed at an emulator URL, with quick retries (tests, benchmarks).

The emulator accepts any bearer token; retries back off in milliseconds so a test that
provokes throttling or a failure finishes quickly. Everything else is the production client.
"""

from __future__ import annotations

import requests

from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.paging import MAX_PAGE_SIZE
from connector.dataverse.retry import RetryPolicy
from connector.dataverse.transport import WebApi


def emulator_web_api(
    url: str, *, attempts: int = 3, concurrency: int = 8, backoff_max: float = 0.2
) -> WebApi:
    """The HTTP layer of a client for the emulator at ``url``."""
    return WebApi(
        url,
        StaticTokenProvider("emulator-token"),
        requests.Session(),
        max_concurrency=concurrency,
        retry=RetryPolicy(max_attempts=attempts, backoff_base=0.05, backoff_max=backoff_max),
    )


def emulator_client(
    url: str,
    *,
    attempts: int = 3,
    concurrency: int = 8,
    backoff_max: float = 0.2,
    page_size: int = MAX_PAGE_SIZE,
) -> DataverseClient:
    """A :class:`DataverseClient` for the emulator at ``url``."""
    api = emulator_web_api(url, attempts=attempts, concurrency=concurrency, backoff_max=backoff_max)
    return DataverseClient(api, page_size=page_size)
