"""Caller impersonation (``CallerObjectId``) with a simple record-level check on writes.

Dataverse runs a request carrying ``CallerObjectId: <Entra object id>`` as the systemuser whose
``azureactivedirectoryobjectid`` it is, and its own security decides. The emulator models the
part the connector relies on: an update or delete of a row with an owner is allowed when the
impersonated user owns it or is a member of the owning team, and refused otherwise with
Dataverse's access-check answer (403, ``0x80040220``). An object id that names no systemuser is
refused the same way. Creates are allowed. Each impersonated write is recorded
(:class:`WriteCaller`) so tests can see whose name an action carried, as the audit trail would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.emulators.dataverse.addressing import parse_key
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.protocol import EmuRequest
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.store import q, table_name

HEADER = "callerobjectid"
ACCESS_DENIED = "0x80040220"


@dataclass(frozen=True, slots=True)
class WriteCaller:
    """One write made on behalf of a user: what, and as whom (systemuserid)."""

    method: str
    table: str
    record_id: str | None
    caller: str


def check_write(
    records: Records, req: EmuRequest, entity: EntityDef, key: str | None
) -> WriteCaller | None:
    """Refuse ``req`` when its impersonated user may not write the row at ``key``.

    Returns the write's caller (None when the request impersonates nobody).
    """
    object_id = (req.header(HEADER) or "").strip().lower()
    if not object_id:
        return None
    user_id = _systemuser(records, object_id)
    if user_id is None:
        raise EmulatorRequestError(
            403,
            ACCESS_DENIED,
            f"No enabled systemuser has azureactivedirectoryobjectid {object_id}.",
        )
    row = records.find(entity, parse_key(entity, key)) if key is not None else None
    record_id = str(row[entity.primary_id]) if row is not None else None
    if row is not None and not _may_write(records, user_id, row):
        raise EmulatorRequestError(
            403,
            ACCESS_DENIED,
            f"SecLib::AccessCheckEx failed. Returned hr = -2147187962, ObjectID: {record_id}, "
            f"OwnerId: {row.get('ownerid')}, OwnerIdType: "
            f"{9 if row.get('ownerid__type') == 'team' else 8} and CallingUser: {user_id}. "
            f"ObjectTypeCode: {entity.object_type_code}, AccessRights: WriteAccess",
        )
    return WriteCaller(req.method, entity.logical_name, record_id, user_id)


def _systemuser(records: Records, object_id: str) -> str | None:
    found = records.store.select(
        f"SELECT {q('systemuserid')} AS id FROM {table_name('systemuser')} "
        f"WHERE lower({q('azureactivedirectoryobjectid')}) = ?",
        [object_id],
    )
    return str(found[0]["id"]) if found else None


def _may_write(records: Records, user_id: str, row: dict[str, Any]) -> bool:
    owner = row.get("ownerid")
    if owner is None:
        return True  # organisation-owned rows: role privileges only, not modelled
    if row.get("ownerid__type") != "team":
        return str(owner).lower() == user_id.lower()
    member = records.store.select(
        f"SELECT 1 AS hit FROM {table_name('teammembership')} "
        f"WHERE {q('teamid')} = ? AND lower({q('systemuserid')}) = ?",
        [owner, user_id.lower()],
    )
    return bool(member)
