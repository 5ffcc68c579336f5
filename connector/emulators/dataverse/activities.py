"""The activitypointer view: every activity row is also visible through ``activitypointers``.

In Dataverse ``activitypointer`` is the common view over all activity tables (tasks, emails,
custom activities). The emulator keeps a mirror row with the shared columns, written in the
same transaction as the activity itself and removed with it.
"""

from __future__ import annotations

from typing import Any

from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.store import Store, q, table_name

POINTER = "activitypointer"


def mirror(store: Store, pointer: EntityDef, entity: EntityDef, row: dict[str, Any]) -> None:
    """Insert or refresh the activitypointer row of an activity row."""
    if entity.logical_name == POINTER or not entity.is_activity:
        return
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
    store.conn.execute(
        f"INSERT OR REPLACE INTO {table_name(POINTER)} ({names}) VALUES ({marks})",
        [row[c] for c in columns],
    )


def unmirror(store: Store, entity: EntityDef, record_id: str) -> None:
    """Remove the activitypointer row of a deleted activity."""
    if entity.logical_name == POINTER or not entity.is_activity:
        return
    store.conn.execute(f"DELETE FROM {table_name(POINTER)} WHERE activityid = ?", [record_id])
