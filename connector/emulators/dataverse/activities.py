"""Activity rules: the activitypointer mirror, state and status, closing, activity parties.

In Dataverse ``activitypointer`` is the common view over all activity tables (tasks, emails,
custom activities). The emulator keeps a mirror row with the shared columns, written in the
same transaction as the activity itself and removed with it.

What Dataverse does with an activity's state (``dataverse-web-api.md`` section 12): a create
ignores ``statecode`` (the row is created Open) and refuses a ``statuscode`` of another state
(``0x80048408``); an update may change the state (send the pair; a ``statecode`` alone takes
the state's first status reason); a completed or canceled activity refuses any other change
unless the same update changes its state. Parties are checked (mask 1-12, a bound row or an
``addressused``), and a party list written by an update replaces the activity's parties.
"""

from __future__ import annotations

from typing import Any

from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.protocol import bad_request
from connector.emulators.dataverse.store import Store, q, table_name

POINTER = "activitypointer"


_MIRROR_SQL: dict[tuple[int, int, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}
"""The mirror statement per row shape (the pointer table, its column count, the row's
columns): working it out walks every column of the pointer table, on every activity write."""
_MIRROR_SHAPES = 256


def mirror(store: Store, pointer: EntityDef, entity: EntityDef, row: dict[str, Any]) -> None:
    """Insert or refresh the activitypointer row of an activity row."""
    if entity.logical_name == POINTER or not entity.is_activity:
        return
    shape = (id(pointer), len(pointer.attributes), tuple(row))
    cached = _MIRROR_SQL.get(shape)
    if cached is None:
        columns = [
            name
            for attr in pointer.attributes.values()
            for name in (
                [attr.logical_name, attr.logical_name + "__type"]
                if attr.is_lookup
                else [attr.logical_name]
            )
            if name in row
        ]
        names = ", ".join(q(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT OR REPLACE INTO {table_name(POINTER)} ({names}) VALUES ({marks})"
        cached = _MIRROR_SQL[shape] = (sql, tuple(columns))
        if len(_MIRROR_SQL) > _MIRROR_SHAPES:
            del _MIRROR_SQL[next(iter(_MIRROR_SQL))]
    sql, stored = cached
    store.conn.execute(sql, [row[c] for c in stored])


def unmirror(store: Store, entity: EntityDef, record_id: str) -> None:
    """Remove the activitypointer row of a deleted activity."""
    if entity.logical_name == POINTER or not entity.is_activity:
        return
    store.conn.execute(f"DELETE FROM {table_name(POINTER)} WHERE activityid = ?", [record_id])


# -- state and status, closing, parties (dataverse-web-api.md section 12) ---------------------

STATE_LABELS = {0: "Open", 1: "Completed", 2: "Canceled", 3: "Scheduled"}
STATUS_STATES = {1: 0, 2: 1, 3: 2, 4: 3}
"""The default status reasons of an activity and the state each belongs to."""
WRITABLE_WHEN_CLOSED = frozenset({"statecode", "statuscode", "ownerid@odata.bind"})
"""What an update of a completed or canceled activity may carry without reopening it."""
PARTY_MASKS = range(1, 13)  # Sender .. ChatParticipant


def _status_states(entity: EntityDef) -> dict[int, int]:
    extra = entity.attributes["statuscode"].extra.get("states")
    return {int(k): int(v) for k, v in extra.items()} if extra else dict(STATUS_STATES)


def _state_of(entity: EntityDef, status: Any) -> int | None:
    return _status_states(entity).get(status) if isinstance(status, int) else None


def _invalid_status(entity: EntityDef, status: Any, state: int, record_id: str) -> Exception:
    name = STATE_LABELS.get(state, str(state))
    return bad_request(
        f"{status} is not a valid status code for state code {entity.logical_name}State.{name} "
        f"on {entity.logical_name} with Id {record_id}.",
        "0x80048408",
    )


def prepare_create(entity: EntityDef, body: dict[str, Any]) -> dict[str, Any]:
    """An activity create: ``statecode`` is not valid for create and is ignored (the row is
    created Open); a ``statuscode`` must belong to the Open state."""
    if not entity.is_activity or entity.logical_name == POINTER:
        return body
    body = {k: v for k, v in body.items() if k != "statecode"}
    status = body.get("statuscode")
    if status is not None and _state_of(entity, status) != 0:
        raise _invalid_status(entity, status, 0, str(body.get(entity.primary_id) or ""))
    return body


def prepare_update(
    entity: EntityDef, current: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """An activity update: a completed or canceled activity refuses every change but its
    state (reopening or closing it again: the body carries ``statecode``) and its owner; a
    ``statecode`` without ``statuscode`` takes the state's first status reason; a
    ``statuscode`` must belong to the (new) state."""
    if not entity.is_activity or entity.logical_name == POINTER:
        return body
    state = current.get("statecode") or 0
    changes = {k for k in body if not k.startswith("@")}
    if state != 0 and "statecode" not in body and changes - WRITABLE_WHEN_CLOSED:
        # Dataverse: "Cannot update Closed or Cancelled Activity" (service code unverified).
        raise bad_request("Cannot update Closed or Cancelled Activity", "0x80040203")
    record_id = str(current[entity.primary_id])
    new_state = body.get("statecode", state)
    if "statecode" in body and new_state not in STATE_LABELS:
        raise bad_request(f"{new_state!r} is not a valid state code.", "0x80040203")
    body = dict(body)
    if "statecode" in body and body.get("statuscode") is None:
        firsts = sorted(s for s, st in _status_states(entity).items() if st == new_state)
        body["statuscode"] = firsts[0] if firsts else None
    status = body.get("statuscode")
    if "statuscode" in body and _state_of(entity, status) != new_state:
        raise _invalid_status(entity, status, new_state, record_id)
    return body


def check_parties(entity: EntityDef, items: list[Any]) -> None:
    """Each activity party is an object with a ``participationtypemask`` of 1-12 and either
    a bound row (``partyid_<table>@odata.bind``) or an unresolved ``addressused``."""
    for item in items:
        if not isinstance(item, dict):
            raise bad_request(f"An item of {entity.logical_name}_activity_parties is not an object")
        mask = item.get("participationtypemask")
        if not isinstance(mask, int) or isinstance(mask, bool) or mask not in PARTY_MASKS:
            raise bad_request(
                f"participationtypemask must be an integer from 1 to 12, not {mask!r}."
            )
        bound = any(k.startswith("partyid_") and k.endswith("@odata.bind") for k in item)
        if not bound and not item.get("addressused"):
            raise bad_request("An activity party needs a partyid binding or an addressused.")


def clear_parties(store: Store, activity_id: str) -> None:
    """Remove an activity's parties (a party list written on update replaces the old one)."""
    parties = table_name("activityparty")
    store.conn.execute(f"DELETE FROM {parties} WHERE activityid = ?", [activity_id])
