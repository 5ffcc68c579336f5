"""Functions and actions: WhoAmI, PublishXml/PublishAllXml, SendAppNotification, *Multiple.

Bulk messages follow the shapes Microsoft's SDK sends: ``{"Targets": [...]}`` bound to the
entity set, answered with ``{"Ids": [...]}`` for CreateMultiple/UpsertMultiple and 204 for
UpdateMultiple. Each runs in one transaction, like the platform's bulk operations.
"""

from __future__ import annotations

from typing import Any

from connector.emulators.dataverse.addressing import parse_key, reference_path, split_segment
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.protocol import EmuRequest, EmuResponse, bad_request
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.seed import (
    SEED_BUSINESS_UNIT_ID,
    SEED_ORGANIZATION_ID,
    SEED_USER_ID,
)


def who_am_i(req: EmuRequest) -> EmuResponse:
    """``GET WhoAmI``: the seeded application user."""
    return EmuResponse.of_json(
        200,
        {
            "@odata.context": f"{req.api_root}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": SEED_BUSINESS_UNIT_ID,
            "UserId": SEED_USER_ID,
            "OrganizationId": SEED_ORGANIZATION_ID,
        },
    )


def send_app_notification(records: Records, req: EmuRequest) -> EmuResponse:
    """``POST SendAppNotification``: stores an appnotification row, returns its id."""
    body = req.json()
    if not body.get("Title") or not body.get("Recipient"):
        raise bad_request("Title and Recipient are required.", "0x80040203")
    entity = records.schema.entity("appnotification")
    payload: dict[str, Any] = {
        "title": body["Title"],
        "body": body.get("Body"),
        "ownerid@odata.bind": body["Recipient"],
    }
    for source, column in (
        ("IconType", "icontype"),
        ("ToastType", "toasttype"),
        ("Priority", "priority"),
        ("Expiry", "ttlinseconds"),
    ):
        if body.get(source) is not None:
            payload[column] = body[source]
    row = records.create(entity, payload)
    return EmuResponse.of_json(
        200,
        {
            "@odata.context": f"{req.api_root}/$metadata#Microsoft.Dynamics.CRM."
            "SendAppNotificationResponse",
            "NotificationId": row["appnotificationid"],
        },
    )


def bulk(records: Records, req: EmuRequest, entity: EntityDef, action: str) -> EmuResponse:
    """``POST <entityset>/Microsoft.Dynamics.CRM.{Create,Update,Upsert}Multiple``."""
    targets = req.json().get("Targets")
    if not isinstance(targets, list) or not targets:
        raise bad_request("Targets must be a non-empty list.", "0x80040203")
    ids: list[str] = []
    with records.store.transaction():
        for target in targets:
            if not isinstance(target, dict):
                raise bad_request("Each target must be an object.", "0x80040203")
            item = {k: v for k, v in target.items() if k not in ("@odata.type", "@odata.id")}
            if action == "CreateMultiple":
                row = records.create(entity, item)
            elif action == "UpdateMultiple":
                current = records.get(entity, str(item.get(entity.primary_id, "")).lower())
                if current is None:
                    raise EmulatorRequestError(
                        404,
                        "0x80040217",
                        f"{entity.logical_name} With Id = "
                        f"{item.get(entity.primary_id)} Does Not Exist",
                    )
                row = records.update(entity, current, item)
            else:
                row = _upsert_one(records, entity, target, item)
            ids.append(str(row[entity.primary_id]))
    if action == "UpdateMultiple":
        return EmuResponse.empty(204)
    context = f"{req.api_root}/$metadata#Microsoft.Dynamics.CRM.{action}Response"
    return EmuResponse.of_json(200, {"@odata.context": context, "Ids": ids})


def _upsert_one(
    records: Records, entity: EntityDef, target: dict[str, Any], item: dict[str, Any]
) -> dict[str, Any]:
    reference = target.get("@odata.id")
    if isinstance(reference, str):
        _, key = split_segment(reference_path(reference))
        address = parse_key(entity, key or "")
    elif item.get(entity.primary_id):
        address = parse_key(entity, str(item[entity.primary_id]))
    else:
        return records.create(entity, item)
    current = records.find(entity, address)
    if current is not None:
        for name in address.alternate or {}:
            item.pop(name, None)
        return records.update(entity, current, item)
    defaults = dict(address.alternate or {})
    if address.record_id:
        defaults[entity.primary_id] = address.record_id
    return records.create(entity, item, defaults)
