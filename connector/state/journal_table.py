"""The ingress journal's table and the statuses of its rows.

One row per verified provider event; ``(provider, event_id)`` is unique, which makes the
journal its own dedupe store. Declared apart from :class:`~connector.state.journal.Journal`
because more than the journal's own code uses the table: its appends and claims
(:mod:`connector.state.journal_appends`, :mod:`connector.state.journal_claims`), and
:mod:`connector.state.journal_file`, which keeps the table in a SQLite file of its own and
moves rows an earlier version left in the state file.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text, UniqueConstraint

from connector.ports import JOURNAL_PARKED
from connector.state.db import metadata, partial_index

PENDING = "pending"
DONE = "done"
ERROR = JOURNAL_PARKED  # the port names the parked status; the column stores it

journal_table = Table(
    "ingress_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False, default=PENDING),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("claim_token", String(32), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("done_at", Float, nullable=True),
    Column("request_id", String(64), nullable=True),  # added after the first release
    UniqueConstraint("provider", "event_id", name="uq_ingress_journal_event"),
    # Rows of a status in arrival order (the claim's oldest due rows: no sort of the whole
    # backlog) and done rows by when they were done (the minutely prune finds the week-old
    # ones without reading the week). The earlier index on (status, next_attempt_at) is
    # dropped: beside it SQLite's planner sorted every due row to claim the first 50.
    Index("ix_ingress_journal_queue", "status", "id"),
    Index("ix_ingress_journal_done", "status", "done_at"),
    # The rows leased now, by their claim's token (a claim reads its rows back through it).
    partial_index("ix_ingress_journal_claim", "claim_token", where="claim_token IS NOT NULL"),
    info={"retired_indexes": ("ix_ingress_journal_due",)},
)
