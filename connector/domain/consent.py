"""Consent as the core sees it: the ledger's vocabulary and the rules a send must pass (pure).

Consent is kept per (phone, sender configuration, purpose): it follows the sender, not the
number, so an opt-in given to one sender number never lets another one send. A
transactional message needs "not opted out"; a commercial one needs "opted in". Every
change is a :class:`ConsentChange` with its evidence (which message or request, its text,
when, from where); the current state of a (phone, configuration, purpose) is the latest
change, and the changes themselves are kept as the history.

Keyword matching and quiet hours live in :mod:`connector.domain.keywords` and
:mod:`connector.domain.quiet_hours`.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connector.domain.model import MessageCategory

PURPOSES = (MessageCategory.TRANSACTIONAL, MessageCategory.COMMERCIAL)


class ConsentStatus(enum.StrEnum):
    """Where a (phone, configuration, purpose) stands."""

    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"
    PENDING = "pending"


class ConsentMethod(enum.StrEnum):
    """How a change came about."""

    KEYWORD = "keyword"
    API = "api"
    FORM = "form"
    IMPORT = "import"
    ADMINISTRATOR = "administrator"
    PROVIDER = "provider"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What shows a change was asked for: the message or request, its text, time, source."""

    at: float
    source: str
    message_id: str | None = None
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "at": self.at,
            "source": self.source,
            "message_id": self.message_id,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """One change of one (phone, configuration, purpose).

    ``id`` is derived from what caused the change (:func:`change_id`), so applying the same
    cause twice (a webhook delivered again, a retried request) records it once.
    ``expires_at`` is set on a *pending* change: a YES after it does not opt in.
    """

    id: str
    phone: str
    configuration_id: str
    purpose: MessageCategory
    status: ConsentStatus
    method: ConsentMethod
    evidence: Evidence
    expires_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the API's history entries)."""
        return {
            "id": self.id,
            "purpose": self.purpose.value,
            "status": self.status.value,
            "method": self.method.value,
            "evidence": self.evidence.to_dict(),
            "expires_at": self.expires_at,
        }


def change_id(cause: str, phone: str, configuration_id: str, purpose: MessageCategory) -> str:
    """A stable id (GUID-shaped) for the change ``cause`` makes to one purpose."""
    digest = hashlib.sha256(
        f"consent|{cause}|{phone}|{configuration_id}|{purpose.value}".encode()
    ).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


# The consent a send needs, as a stable problem code when it is missing.
OPTED_OUT = "consent_opted_out"
MISSING = "consent_missing"


def refusal(
    current: Mapping[MessageCategory, ConsentChange], category: MessageCategory
) -> str | None:
    """Why a send of ``category`` may not go out given the current state per purpose, or
    None. Opted out of that purpose (STOP opts out of every purpose) refuses it; a commercial
    send also needs an explicit opt-in (pending is not enough)."""
    held = current.get(category)
    if held is not None and held.status is ConsentStatus.OPTED_OUT:
        return OPTED_OUT
    if category is MessageCategory.COMMERCIAL and (
        held is None or held.status is not ConsentStatus.OPTED_IN
    ):
        return MISSING
    return None


def pending_confirmations(current: Iterable[ConsentChange], now: float) -> list[ConsentChange]:
    """The pending changes a YES sent at ``now`` would confirm (not yet expired)."""
    return [
        change
        for change in current
        if change.status is ConsentStatus.PENDING
        and (change.expires_at is None or change.expires_at >= now)
    ]
