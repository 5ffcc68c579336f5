"""The outbox's table and the stored form of its messages.

The ``outbox`` table (one row per outbound message, its indexes for the send and sync claims),
the values of its ``send_state`` column, and the JSON a message is stored as in its
``message`` column. They are declared apart from :class:`~connector.state.outbox.Outbox`
because more than the outbox reads them: the sending and Dataverse sides of the outbox
(:mod:`connector.state.outbox_sends`, :mod:`connector.state.outbox_sync`) and bulk jobs, which
show each recipient's live outcome from its message's row (:mod:`connector.state.bulk`).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from connector.domain.model import MessageCategory
from connector.domain.outbound import Failure, OutboundMessage
from connector.domain.segments import Encoding
from connector.domain.status import FailureCategory, MessageStatus
from connector.state.db import metadata, partial_index

# send_state: where the hand-over to the provider stands
WAITING = "waiting"  # not handed yet (due at due_at)
HANDED = "handed"  # the provider has it (or it ended before reaching it)

outbox_table = Table(
    "outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    Column("request_hash", String(64), nullable=True),
    Column("answer", Text, nullable=True),
    Column("configuration_id", String(36), nullable=False),
    Column("to_number", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("send_state", String(16), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("attempt_at", Float, nullable=True),
    Column("claim_token", String(32), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("synced_version", Integer, nullable=False, default=0),
    Column("sync_due_at", Float, nullable=False, default=0.0),
    Column("sync_token", String(32), nullable=True),
    Column("sync_lease_until", Float, nullable=True),
    Column("sync_attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # A sender's messages to send in the order they are sent (no sort of its queue).
    Index("ix_outbox_due", "send_state", "configuration_id", "due_at", "created_at"),
    # Messages whose latest version Dataverse lacks, by last change: the sync claims walk
    # only those (beside 300,000 synced messages a claim read them all, 200 ms).
    partial_index("ix_outbox_unsynced", "updated_at", where="version > synced_version"),
    Index("ix_outbox_pair", "to_number", "created_at"),
    # The messages leased now, by their claim's token (the claims read them back through it).
    partial_index("ix_outbox_claim", "claim_token", where="claim_token IS NOT NULL"),
    partial_index("ix_outbox_sync_claim", "sync_token", where="sync_token IS NOT NULL"),
    info={"retired_indexes": ("ix_outbox_send", "ix_outbox_sync")},
)


def message_to_json(message: OutboundMessage) -> str:
    """The stored form of a message."""
    data = asdict(message)
    data["media_urls"] = list(message.media_urls)
    data["ucs2_characters"] = list(message.ucs2_characters)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def message_from_json(text: str) -> OutboundMessage:
    """A message from its stored form."""
    data = json.loads(text)
    failure = data.pop("failure")
    return OutboundMessage(
        **{
            **data,
            "category": MessageCategory(data["category"]),
            "encoding": Encoding(data["encoding"]),
            "status": MessageStatus(data["status"]),
            "media_urls": tuple(data["media_urls"]),
            "ucs2_characters": tuple(data["ucs2_characters"]),
            "failure": (
                None
                if failure is None
                else Failure(
                    FailureCategory(failure["category"]), failure["reason"], failure["code"]
                )
            ),
        }
    )
