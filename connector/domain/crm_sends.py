"""Sends that start in Dynamics: an outbound message row created in Dataverse, as the send
path sees it, and what a refusal of it becomes on the row.

A workflow, a cloud flow or a sales sequence creates an SMS message row with direction
outbound and status queued, regarding a record, with a body or a template. The connector
reads such a row (from a Dataverse webhook or its poll) as a :class:`CrmSendRow`, sends it
through the one send path with the row's id as the message id, and updates the row in place.
A row the send path refuses ends ``failed`` with a :class:`~connector.domain.outbound.Failure`
whose category says why (:func:`refusal_failure`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.domain.model import MessageCategory
from connector.domain.outbound import Failure
from connector.domain.routing import RecordRef
from connector.domain.status import FailureCategory

NO_PHONE_NUMBER = "no phone number"

# refusal code of the send path -> (category, plain reason shown in Dynamics)
_REFUSALS: dict[str, tuple[FailureCategory, str]] = {
    "number_blocked": (FailureCategory.OPTED_OUT, "the number is blocked for this sender"),
    "consent_opted_out": (FailureCategory.OPTED_OUT, "the recipient opted out"),
    "consent_missing": (
        FailureCategory.CONSENT_MISSING,
        "no opt-in for commercial messages from this sender",
    ),
    "compliance_blocked": (
        FailureCategory.CONSENT_MISSING,
        "the regarding record does not allow text messages",
    ),
    "regarding_without_phone": (FailureCategory.INVALID_RECIPIENT, NO_PHONE_NUMBER),
    "recipient_missing": (FailureCategory.INVALID_RECIPIENT, NO_PHONE_NUMBER),
    "invalid_phone_number": (FailureCategory.INVALID_RECIPIENT, "not a valid phone number"),
    "number_not_mobile": (
        FailureCategory.INVALID_RECIPIENT,
        "the number cannot receive text messages",
    ),
    "unknown_sender": (FailureCategory.CONFIGURATION, "no active sender configuration"),
    "sender_ambiguous": (
        FailureCategory.CONFIGURATION,
        "several senders could send this; set the configuration on the row",
    ),
    "no_sender": (FailureCategory.CONFIGURATION, "no active sender configuration"),
}


@dataclass(frozen=True, slots=True)
class CrmSendRow:
    """An ``smsc_message`` row created in Dataverse, as read from a webhook or the poll.

    ``outbound`` / ``queued`` / ``provider_id`` say whether it is a send waiting for us at
    all (inbound rows, and rows already sent, are not).
    """

    id: str
    outbound: bool
    queued: bool
    provider_id: str | None = None
    regarding: RecordRef | None = None
    body: str | None = None
    template_id: str | None = None
    to: str | None = None
    from_number: str | None = None
    configuration_id: str | None = None
    category: MessageCategory | None = None
    modified_at: str | None = None  # the row's ``modifiedon`` as Dataverse wrote it (poll)

    @property
    def waiting(self) -> bool:
        """Whether the row asks the connector to send it (outbound, queued, never sent)."""
        return self.outbound and self.queued and not self.provider_id


def refusal_failure(code: str, message: str) -> Failure:
    """What a row the send path refused (``code``, ``message``) shows in Dynamics."""
    category, reason = _REFUSALS.get(code, (FailureCategory.INVALID_PARAMETERS, ""))
    text = f"{reason}: {message}" if reason and reason not in message else message
    return Failure(category, text[:2000], code[:32])
