"""Many-to-many associations through an intersect table (team members: ``teammembership``).

``POST teams(<id>)/teammembership_association/$ref {"@odata.id": ".../systemusers(<id>)"}``
associates, ``DELETE teams(<id>)/teammembership_association(<id>)/$ref`` (or ``/$ref?$id=``)
disassociates, as the Web API's Associate/Disassociate requests do.
"""

from __future__ import annotations

from connector.emulators.dataverse.addressing import parse_key, split_segment
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.protocol import EmuRequest, EmuResponse, bad_request, not_found
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.schema import ManyNav
from connector.emulators.dataverse.store import q, table_name


def reference(
    records: Records, req: EmuRequest, entity: EntityDef, key: str, segment: str
) -> EmuResponse:
    """Associate or disassociate two rows through a many-to-many navigation."""
    nav_name, other_key = split_segment(segment)
    nav = records.schema.many[entity.logical_name][nav_name]
    row = records.find(entity, parse_key(entity, key), (entity.primary_id,))
    if row is None:
        raise not_found(entity.logical_name, key)
    target = records.schema.entity(nav.target)
    intersect = records.schema.entity(nav.intersect)
    self_id = str(row[entity.primary_id])
    if req.method == "POST":
        other_entity, other = records.resolve_reference(
            str(req.json().get("@odata.id", "")), req.content_ids, id_only=True
        )
        if other_entity.logical_name != target.logical_name:
            raise bad_request(f"'{nav_name}' links {entity.logical_name} to {target.logical_name}.")
        other_id = str(other[target.primary_id])
        if not _linked(records, nav, self_id, other_id):
            records.create(
                intersect,
                {},
                defaults={
                    nav.self_column: self_id,
                    f"{nav.self_column}__type": entity.logical_name,
                    nav.target_column: other_id,
                    f"{nav.target_column}__type": target.logical_name,
                },
            )
        return EmuResponse.empty(204)
    if req.method == "DELETE":
        other_id = other_key or _id_from_query(req, target)
        rows = records.store.select(
            f"SELECT * FROM {table_name(nav.intersect)} WHERE {q(nav.self_column)} = ? "
            f"AND {q(nav.target_column)} = ?",
            [self_id, other_id.lower()],
        )
        for link in rows:
            records.delete(intersect, link)
        return EmuResponse.empty(204)
    raise EmulatorRequestError(405, "0x80060888", f"The HTTP method '{req.method}' is not allowed.")


def _linked(records: Records, nav: ManyNav, self_id: str, other_id: str) -> bool:
    found = records.store.scalar(
        f"SELECT 1 FROM {table_name(nav.intersect)} WHERE {q(nav.self_column)} = ? "
        f"AND {q(nav.target_column)} = ?",
        [self_id, other_id],
    )
    return found is not None


def _id_from_query(req: EmuRequest, target: EntityDef) -> str:
    reference_url = req.query.get("$id", "")
    _, key = split_segment(reference_url.rsplit("/", 1)[-1]) if reference_url else ("", None)
    if not key:
        raise bad_request("Name the row to disassociate in the URL or with $id.")
    address = parse_key(target, key)
    return address.record_id or ""
