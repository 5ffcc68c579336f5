"""What every table gets, standard or created through the metadata API, and the seed ids.

The columns and relationships every new table gets (owner, created/modified, state;
for activity tables the activitypointer columns, regarding lookups to every table with
``HasActivities`` and the ``<activity>_activity_parties`` collection), used both when seeding
and when ``POST EntityDefinitions`` creates a table; notes (``objectid_<table>``) for custom
tables with ``HasNotes``. The standard tables themselves are in ``standard.py``.
"""

from __future__ import annotations

from connector.emulators.dataverse.metadata import AttributeDef, EntityDef, RelationshipDef
from connector.emulators.dataverse.schema import Schema, one_to_many

SEED_USER_ID = "00000000-0000-0000-0000-00000000aa01"
SEED_BUSINESS_UNIT_ID = "00000000-0000-0000-0000-00000000bb01"
SEED_ORGANIZATION_ID = "00000000-0000-0000-0000-00000000cc01"
PARTY_TARGETS = ("contact", "account", "lead", "systemuser")
ACTIVITY_STATES = {0: "Open", 1: "Completed", 2: "Canceled", 3: "Scheduled"}
ACTIVE_STATES = {0: "Active", 1: "Inactive"}


def string_column(name: str, length: int = 100, fmt: str = "Text") -> AttributeDef:
    return AttributeDef(name, "String", max_length=length, format_name=fmt)


def phone_column(name: str) -> AttributeDef:
    return AttributeDef(name, "String", max_length=50, format_name="Phone")


def common_columns(entity: EntityDef, states: dict[int, str]) -> None:
    """Key, audit, state and owner columns shared by every table."""
    entity.add(AttributeDef(entity.primary_id, "Uniqueidentifier", is_primary_id=True))
    entity.add(AttributeDef("createdon", "DateTime"))
    entity.add(AttributeDef("modifiedon", "DateTime"))
    entity.add(AttributeDef("versionnumber", "BigInt"))
    entity.add(AttributeDef("statecode", "State", options=dict(states)))
    entity.add(AttributeDef("statuscode", "Status", options={1: "Active", 2: "Inactive"}))
    if entity.ownership in ("UserOwned", "TeamOwned"):
        entity.add(AttributeDef("ownerid", "Owner", targets=["systemuser", "team"]))
    if entity.primary_name and entity.primary_name not in entity.attributes:
        entity.add(string_column(entity.primary_name, 200 if not entity.is_activity else 400))
        entity.attributes[entity.primary_name].is_primary_name = True


def activity_columns(entity: EntityDef) -> None:
    """Columns an activity table inherits from activitypointer."""
    for name in ("description",):
        entity.add(AttributeDef(name, "Memo", max_length=1048576))
    for name in ("scheduledstart", "scheduledend", "actualstart", "actualend"):
        entity.add(AttributeDef(name, "DateTime"))
    entity.add(AttributeDef("directioncode", "Boolean"))
    entity.add(AttributeDef("activitytypecode", "EntityName"))
    entity.add(AttributeDef("prioritycode", "Picklist", options={0: "Low", 1: "Normal", 2: "High"}))
    entity.add(AttributeDef("regardingobjectid", "Lookup"))
    entity.attributes["statuscode"].options = {
        1: "Open",
        2: "Completed",
        3: "Canceled",
        4: "Scheduled",
    }


def new_table(
    logical_name: str,
    entity_set: str,
    primary_name: str,
    *,
    is_activity: bool = False,
    ownership: str = "UserOwned",
    has_activities: bool = False,
    change_tracking: bool = False,
    otc: int = 0,
) -> EntityDef:
    """A table definition with the columns every table of its kind has."""
    entity = EntityDef(
        logical_name=logical_name,
        entity_set=entity_set,
        primary_id="activityid" if is_activity else f"{logical_name}id",
        primary_name=primary_name,
        is_activity=is_activity,
        ownership=ownership,
        has_activities=has_activities,
        has_notes=True,
        change_tracking=change_tracking,
        object_type_code=otc,
        display_name=logical_name,
        display_collection_name=entity_set,
    )
    common_columns(entity, ACTIVITY_STATES if is_activity else ACTIVE_STATES)
    if is_activity:
        activity_columns(entity)
    return entity


def wire(schema: Schema, entity: EntityDef) -> None:
    """Add a new table's owner, regarding and activity-party relationships to the schema."""
    schema.add_entity(entity)
    if "ownerid" in entity.attributes:
        for target in ("systemuser", "team"):
            if target in schema.entities:
                name = f"{target}_{entity.logical_name}_owner"
                rel = one_to_many(
                    name, schema.entities[target], entity.logical_name, "ownerid", "ownerid"
                )
                schema.add_relationship(rel)
    if entity.has_notes and entity.is_custom and "annotation" in schema.entities:
        _notes(schema, entity)
    activities = [e for e in schema.entities.values() if e.is_activity]
    if entity.is_activity:
        for regarded in [e for e in schema.entities.values() if e.has_activities]:
            _regarding(schema, regarded, entity)
        _parties(schema, entity)
    elif entity.has_activities:
        for activity in activities:
            _regarding(schema, entity, activity)


def _regarding(schema: Schema, target: EntityDef, activity: EntityDef) -> None:
    act = activity.logical_name
    schema.entities[act].attributes["regardingobjectid"].targets.append(target.logical_name)
    nav = (
        f"regardingobjectid_{target.logical_name}"
        if act == "activitypointer"
        else f"regardingobjectid_{target.logical_name}_{act}"
    )
    name = f"{target.logical_name}_{act}"
    schema.add_relationship(one_to_many(name, target, act, "regardingobjectid", nav))


def _notes(schema: Schema, entity: EntityDef) -> None:
    """Notes (annotation.objectid) can point at every table with HasNotes."""
    column = schema.entities["annotation"].attributes["objectid"]
    if entity.logical_name not in column.targets:
        column.targets.append(entity.logical_name)
    name = f"{entity.logical_name}_Annotations"
    nav = f"objectid_{entity.logical_name}"
    schema.add_relationship(one_to_many(name, entity, "annotation", "objectid", nav))


def _parties(schema: Schema, activity: EntityDef) -> None:
    if "activityparty" not in schema.entities or activity.logical_name == "activityparty":
        return
    schema.entities["activityparty"].attributes["activityid"].targets.append(activity.logical_name)
    schema.add_relationship(
        RelationshipDef(
            schema_name=f"{activity.logical_name}_activity_parties",
            referenced_entity=activity.logical_name,
            referenced_attribute="activityid",
            referencing_entity="activityparty",
            referencing_attribute="activityid",
            referencing_nav=f"activityid_{activity.logical_name}",
            referenced_nav=f"{activity.logical_name}_activity_parties",
        )
    )
