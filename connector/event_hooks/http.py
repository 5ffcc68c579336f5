"""POSTs event deliveries to subscribers with ``requests`` (the real ``EventPoster``).

One pooled session, a bounded timeout, no redirects followed (a subscriber that moved must
subscribe again: following one would send the signed body somewhere nobody subscribed).
A timeout or a connection failure is an answer without a status, which the events service
retries. Only the URL's scheme, host and path are ever logged: a Power Automate callback
URL carries its signature in the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import requests

from connector.domain.events import PostAnswer
from connector.log_config import get_logger

log = get_logger(__name__)
TIMEOUT_SECONDS = 10.0


def shown(url: str) -> str:
    """The URL without its query and fragment (for logs)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


class HttpEventPoster:
    """Delivers events over HTTP."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._session = requests.Session()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostAnswer:
        """POST ``body``; the subscriber's status and Retry-After, or the failure."""
        try:
            answer = self._session.post(
                url, data=body, headers=dict(headers), timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            log.info("events.post_failed", url=shown(url), error=type(exc).__name__)
            return PostAnswer(None, error=type(exc).__name__)
        answer.close()
        return PostAnswer(answer.status_code, answer.headers.get("Retry-After"))

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()
