"""Pure builders for the activity side of message and session rows: state, times, parties.

Both connector tables are custom activities (``dataverse-web-api.md`` section 12). What that
means for a write:

- **State.** ``statecode`` is not valid on create (ignored: the row is created Open), and a
  completed activity refuses every update that does not change its state. So a row's body
  always carries the Open pair (``statecode`` 0, ``statuscode`` 1): on create it is what the
  row gets anyway, on a completed row (a replay, a later status, an agent's change) it reopens
  it in the same operation. A final row is then closed by a second operation in the SAME
  change set (``statecode`` 1 Completed / 2 Canceled with its default status reason, and
  ``actualend``): one ``$batch`` as before, two operations instead of one, atomic.
- **Parties.** The ``<activity>_activity_parties`` collection: a bound party for the tables a
  custom activity's party lists target (contact, account, systemuser), an unresolved
  ``addressused`` party for anything else (a lead, an opportunity, a team, no record), and the
  phone number as ``addressused`` on every party so the timeline shows the number used.
  A party list written again replaces the previous one, so a replay changes nothing.

The status reasons are the activity defaults (2 Completed, 3 Canceled); the delivery detail
(sent, delivered, failed, received) stays in the message's own status column.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.crm import tables
from connector.dataverse.batch import BatchOperation
from connector.dataverse.lookups import Participation, RowRef, activity_parties, activity_party
from connector.domain.status import MessageStatus

PARTY_TABLES = frozenset({"contact", "account", "systemuser"})
"""What the generated party lists of a custom activity target (msfp_surveyinvite reference)."""


class ActivityState(enum.Enum):
    """An activity's state with its default status reason."""

    OPEN = (0, 1)
    COMPLETED = (1, 2)
    CANCELED = (2, 3)

    @property
    def pair(self) -> dict[str, int]:
        """``{"statecode": ..., "statuscode": ...}`` (always sent together)."""
        return {"statecode": self.value[0], "statuscode": self.value[1]}


FINAL_OUTBOUND: dict[MessageStatus, ActivityState] = {
    MessageStatus.SENT: ActivityState.COMPLETED,
    MessageStatus.DELIVERED: ActivityState.COMPLETED,
    MessageStatus.UNDELIVERED: ActivityState.COMPLETED,
    MessageStatus.FAILED: ActivityState.COMPLETED,
    MessageStatus.READ: ActivityState.COMPLETED,
    MessageStatus.CANCELED: ActivityState.CANCELED,
}
"""An outbound message is done once the provider has it (sent) or it failed: later callbacks
(delivered, undelivered) rewrite the row in a change set that closes it again."""


def when(seconds: float) -> str:
    """Epoch seconds as the ISO 8601 UTC text Dataverse takes."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Party:
    """One side of a message: a row (table, id) when known, and the number it used."""

    table: str | None
    row_id: str | None
    address: str | None = None

    def item(self, role: Participation) -> dict[str, Any]:
        """The activity-party object for ``role``."""
        if self.table in PARTY_TABLES and self.row_id:
            ref = RowRef(self.table, tables.entity_set(self.table), self.row_id)
            return activity_party(role, ref, address=self.address or None)
        return activity_party(role, address=self.address or "unknown")


def parties(activity_table: str, sender: Party, recipient: Party) -> dict[str, Any]:
    """The party collection of a message: one Sender (from) and one ToRecipient (to)."""
    items = [sender.item(Participation.SENDER), recipient.item(Participation.TO_RECIPIENT)]
    return activity_parties(activity_table, items)


def close(path: str, state: ActivityState, at: float) -> BatchOperation:
    """The operation that completes (or cancels) the row at ``path``, ending at ``at``."""
    return BatchOperation("PATCH", path, {**state.pair, "actualend": when(at)})


def with_state(
    path: str, body: dict[str, Any], final: ActivityState | None, at: float | None
) -> Sequence[BatchOperation]:
    """The body (Open pair added) and, for a final row, the closing operation after it."""
    ops = [BatchOperation("PATCH", path, {**body, **ActivityState.OPEN.pair})]
    if final is not None and final is not ActivityState.OPEN:
        ops.append(close(path, final, at if at is not None else 0.0))
    return ops
