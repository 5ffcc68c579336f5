"""Where providers reach us, and which provider a webhook or a journal row belongs to.

The webhook paths are part of the product (design section 8) and are defined here once:
``/webhooks/{provider}/messages`` for inbound messages and
``/webhooks/{provider}/status/{message_id}`` for delivery callbacks. Signatures are made over
the **public** URL (:func:`public_url`: the configured base URL, never the socket address).
:class:`ProviderRegistry` maps a provider's name (the path segment, and the name the journal
stores beside each raw payload) to its :class:`~connector.ports.WebhookProvider`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Protocol, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from connector.errors import NotFoundError

INBOUND_PATH = "/webhooks/{provider}/messages"
STATUS_PATH = "/webhooks/{provider}/status/{message_id}"


@lru_cache(maxsize=64)
def inbound_path(provider: str) -> str:
    """The inbound-message webhook path of ``provider`` (``/webhooks/twilio/messages``)."""
    return INBOUND_PATH.format(provider=quote(provider, safe=""))


def status_path(provider: str, message_id: str) -> str:
    """The status-callback path of ``provider`` for our message ``message_id``."""
    return STATUS_PATH.format(
        provider=quote(provider, safe=""), message_id=quote(message_id, safe="")
    )


@lru_cache(maxsize=256)
def public_url(base_url: str, path: str, query: str = "") -> str:
    """The URL a provider called: the configured public base URL, the path, the raw query.

    ``base_url`` may carry a path prefix (``https://host/sms``); ``query`` is the raw query
    string exactly as received (values still URL-encoded), without ``?``. Cached: the
    webhooks to one path mostly share one URL.
    """
    base = urlsplit(base_url)
    joined = base.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((base.scheme, base.netloc, joined, query, ""))


class _Named(Protocol):
    name: str


P = TypeVar("P", bound=_Named)


class ProviderRegistry(Mapping[str, P]):
    """The providers this process accepts webhooks (or status callbacks) from, by name; an
    unknown name is :class:`~connector.errors.NotFoundError` ``unknown_provider``."""

    def __init__(self, providers: Iterable[P]) -> None:
        self._by_name = {provider.name: provider for provider in providers}

    def __getitem__(self, name: str) -> P:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFoundError(
                f"no SMS provider named {name[:40]!r} is configured",
                code="unknown_provider",
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)
