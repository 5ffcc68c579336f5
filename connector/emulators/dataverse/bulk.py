"""Fast bulk loading of rows straight into the store (benchmarks, fixtures, local demos).

Bypasses HTTP and per-row validation but applies the same system defaults as a create
(primary key, created/modified stamps, state, owner, a row version each), in one transaction;
the table's plain indexes are dropped for the load and built once afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from connector.emulators.dataverse.seed import SEED_USER_ID
from connector.emulators.dataverse.values import now_text

if TYPE_CHECKING:
    from connector.emulators.dataverse.state import EmulatorState


def bulk_load(
    emulator: EmulatorState, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]
) -> int:
    """Insert ``rows`` (values for ``columns``) into ``table``; returns how many were loaded."""
    entity = emulator.schema.entity(table)
    for column in columns:
        emulator.schema.attribute(entity, column)
    system = [
        entity.primary_id,
        "createdon",
        "modifiedon",
        "statecode",
        "statuscode",
        "versionnumber",
    ]
    owned = "ownerid" in entity.attributes
    if owned:
        system += ["ownerid", "ownerid__type"]
    stamp = now_text()
    counter = {"n": 0}
    first_version = emulator.store.current_version() + 1

    def expanded() -> Iterator[tuple[Any, ...]]:
        for values in rows:
            version = first_version + counter["n"]
            counter["n"] += 1
            head: tuple[Any, ...] = (str(uuid.uuid4()), stamp, stamp, 0, 1, version)
            if owned:
                head += (SEED_USER_ID, "systemuser")
            yield head + tuple(values)

    with emulator.store.lock:
        emulator.store.drop_plain_indexes(entity)  # rebuilt once after the load: much faster
        emulator.store.bulk_insert(entity, [*system, *columns], expanded())
        emulator.store.ensure_table(entity)
        emulator.store.conn.execute(
            "UPDATE _emu_counter SET value = ? WHERE name = 'version'",
            [first_version + counter["n"] - 1],
        )
    return counter["n"]
