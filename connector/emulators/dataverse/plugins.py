"""The plug-in registration tables: ``serviceendpoint``, ``sdkmessage``, ``sdkmessagefilter`` and
``sdkmessageprocessingstep`` (section 11 of the Web API notes).

Their columns, option values and navigation properties (``eventhandler_serviceendpoint``,
``sdkmessageid``, ``sdkmessagefilterid``) are the documented ones, so a webhook registers
through the Web API exactly as against Dataverse. ``serviceendpoint.authvalue`` is write-only
(never returned; ``isauthvalueset`` says whether one is set). The system messages are seeded
with fixed ids (Create's is Dataverse's own), and every table gets its Create/Update/Delete
message filters (a table created later gets them when it is created). Deleting an endpoint
deletes its steps (the relationship cascades). :mod:`~connector.emulators.dataverse.webhooks`
posts to the registered endpoints.
"""

from __future__ import annotations

from connector.emulators.dataverse.metadata import AttributeDef, EntityDef
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.schema import Schema, one_to_many
from connector.emulators.dataverse.seed import new_table, string_column, wire

ENDPOINT = "serviceendpoint"
MESSAGE = "sdkmessage"
FILTER = "sdkmessagefilter"
STEP = "sdkmessageprocessingstep"
TABLES = (ENDPOINT, MESSAGE, FILTER, STEP)
# Create keeps Dataverse's own id (the same in every environment); the others are fixed ids
# of the emulator's (look them up by name, as against Dataverse).
MESSAGE_IDS = {
    "Create": "9ebdbb1b-ea3e-db11-86a7-000a3a5473e8",
    "Update": "20bebb1b-ea3e-db11-86a7-000a3a5473e8",
    "Delete": "20bdbb1b-ea3e-db11-86a7-000a3a5473e8",
}
_CONTRACTS = dict(enumerate(
    ("OneWay", "Queue", "Rest", "TwoWay", "Topic", "Queue (Persistent)", "Event Hub", "Webhook",
     "Event Grid", "Managed Data Lake"), start=1))  # fmt: skip
_AUTH_TYPES = dict(enumerate(
    ("ACS", "SAS Key", "SAS Token", "Webhook Key", "Http Header", "Http Query String",
     "Connection String", "Access Key"), start=1))  # fmt: skip


def _picklist(name: str, options: dict[int, str]) -> AttributeDef:
    return AttributeDef(name, "Picklist", options=dict(options))


def _endpoint() -> EntityDef:
    entity = new_table(ENDPOINT, "serviceendpoints", "name", ownership="OrganizationOwned",
                       otc=4618)  # fmt: skip
    entity.add(_picklist("contract", _CONTRACTS))
    entity.add(string_column("url", 2000))
    entity.add(_picklist("authtype", _AUTH_TYPES))
    secret = entity.add(string_column("authvalue", 2048))
    secret.extra["write_only"] = True
    entity.add(AttributeDef("isauthvalueset", "Boolean"))
    entity.add(_picklist("messageformat", {1: "Binary XML", 2: "Json", 3: "Text XML"}))
    entity.add(_picklist("userclaim", {1: "None", 2: "UserId", 3: "UserInfo"}))
    entity.add(_picklist("connectionmode", {1: "Normal", 2: "Federated"}))
    entity.add(_picklist("namespaceformat", {1: "Namespace Name", 2: "Namespace Address"}))
    entity.add(string_column("path", 160))
    entity.add(AttributeDef("description", "Memo", max_length=2000))
    return entity


def _step() -> EntityDef:
    entity = new_table(STEP, "sdkmessageprocessingsteps", "name", ownership="OrganizationOwned",
                       otc=4608)  # fmt: skip
    entity.add(AttributeDef("description", "Memo", max_length=256))
    stages = {10: "Pre-validation", 20: "Pre-operation", 30: "Main", 40: "Post-operation"}
    entity.add(_picklist("stage", stages))
    entity.add(_picklist("mode", {0: "Synchronous", 1: "Asynchronous"}))
    entity.add(AttributeDef("rank", "Integer"))
    entity.add(_picklist("supporteddeployment", {0: "Server Only", 1: "Outlook", 2: "Both"}))
    entity.add(_picklist("invocationsource", {-1: "Internal", 0: "Parent", 1: "Child"}))
    entity.add(AttributeDef("asyncautodelete", "Boolean"))
    entity.add(string_column("filteringattributes", 100000))
    entity.attributes["statecode"].options = {0: "Enabled", 1: "Disabled"}
    entity.attributes["statuscode"].options = {1: "Enabled", 2: "Disabled"}
    return entity


def _message() -> EntityDef:
    return new_table(MESSAGE, "sdkmessages", "name", ownership="OrganizationOwned", otc=4606)


def _filter() -> EntityDef:
    entity = new_table(FILTER, "sdkmessagefilters", "name", ownership="OrganizationOwned",
                       otc=4607)  # fmt: skip
    entity.add(string_column("primaryobjecttypecode", 100))
    entity.add(string_column("secondaryobjecttypecode", 100))
    return entity


# (table, lookup column, target, single-valued navigation, relationship)
_LINKS = (
    (FILTER, "sdkmessageid", MESSAGE, "sdkmessageid", "sdkmessageid_sdkmessagefilter"),
    (STEP, "eventhandler", ENDPOINT, "eventhandler_serviceendpoint",
     "serviceendpoint_sdkmessageprocessingstep"),
    (STEP, "sdkmessageid", MESSAGE, "sdkmessageid", "sdkmessageid_sdkmessageprocessingstep"),
    (STEP, "sdkmessagefilterid", FILTER, "sdkmessagefilterid",
     "sdkmessagefilterid_sdkmessageprocessingstep"),
)  # fmt: skip


def add_registration_tables(schema: Schema) -> list[EntityDef]:
    """Add the four tables and their lookups where missing; the tables added."""
    added = []
    for build in (_endpoint, _message, _filter, _step):
        entity = build()
        if entity.logical_name not in schema.entities:
            wire(schema, entity)
            added.append(entity)
    if not added:
        return added
    for table, column, target, nav, relationship in _LINKS:
        attr = schema.entities[table].attributes.get(column)
        if attr is None:
            attr = schema.entities[table].add(AttributeDef(column, "Lookup"))
        if target not in attr.targets:
            attr.targets.append(target)
        schema.add_relationship(
            one_to_many(relationship, schema.entities[target], table, column, nav)
        )
    return added


def seed_messages(records: Records) -> None:
    """The system messages, and every table's message filters (missing ones only)."""
    message = records.schema.entities[MESSAGE]
    for name, message_id in MESSAGE_IDS.items():
        if records.get(message, message_id) is None:
            records.create(message, {"sdkmessageid": message_id, "name": name})
    for entity in list(records.schema.entities.values()):
        add_filters(records, entity)


def add_filters(records: Records, entity: EntityDef) -> None:
    """The Create/Update/Delete filters of ``entity`` (missing ones only)."""
    filters = records.schema.entities.get(FILTER)
    if filters is None or entity.logical_name in TABLES:
        return
    for name, message_id in MESSAGE_IDS.items():
        existing = records.store.scalar(
            'SELECT COUNT(*) FROM "e_sdkmessagefilter" WHERE primaryobjecttypecode = ? '
            "AND sdkmessageid = ?",
            [entity.logical_name, message_id],
        )
        if existing:
            continue
        records.create(
            filters,
            {
                "name": f"{name} of {entity.logical_name}",
                "primaryobjecttypecode": entity.logical_name,
                "secondaryobjecttypecode": "none",
                "sdkmessageid@odata.bind": f"/sdkmessages({message_id})",
            },
        )
