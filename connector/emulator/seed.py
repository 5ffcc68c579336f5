"""Standard tables with their real column names, state codes and relationships.

Also the columns and relationships every new table gets (owner, created/modified, state;
for activity tables the activitypointer columns, regarding lookups to every table with
``HasActivities`` and the ``<activity>_activity_parties`` collection), used both when seeding
and when ``POST EntityDefinitions`` creates a table.
"""

from __future__ import annotations

from connector.emulator.metadata import AttributeDef, EntityDef, RelationshipDef
from connector.emulator.schema import ManyNav, Schema, one_to_many

SEED_USER_ID = "00000000-0000-0000-0000-00000000aa01"
SEED_BUSINESS_UNIT_ID = "00000000-0000-0000-0000-00000000bb01"
SEED_ORGANIZATION_ID = "00000000-0000-0000-0000-00000000cc01"
PARTY_TARGETS = ("contact", "account", "lead", "systemuser")
ACTIVITY_STATES = {0: "Open", 1: "Completed", 2: "Canceled", 3: "Scheduled"}
ACTIVE_STATES = {0: "Active", 1: "Inactive"}


def _s(name: str, length: int = 100, fmt: str = "Text") -> AttributeDef:
    return AttributeDef(name, "String", max_length=length, format_name=fmt)


def _phone(name: str) -> AttributeDef:
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
        entity.add(_s(entity.primary_name, 200 if not entity.is_activity else 400))
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
    entity.attributes["statuscode"].options = {1: "Open", 2: "Completed", 3: "Canceled"}


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


def _lookup(schema: Schema, link: tuple[str, str, str, str, str]) -> None:
    entity, attr, target, nav, coll = link
    column = schema.entities[entity].attributes.get(attr)
    if column is None:
        column = schema.entities[entity].add(AttributeDef(attr, "Lookup"))
    if target not in column.targets:
        column.targets.append(target)
    if len(column.targets) > 1:
        column.attribute_type = "Customer"
    schema.add_relationship(one_to_many(coll, schema.entities[target], entity, attr, nav))


def standard_schema() -> Schema:
    """The seeded standard tables, in dependency order, fully wired."""
    schema = Schema()
    tables = [
        new_table("systemuser", "systemusers", "fullname", ownership="BusinessOwned", otc=8),
        new_table("team", "teams", "name", ownership="BusinessOwned", otc=9),
        new_table("account", "accounts", "name", has_activities=True, change_tracking=True, otc=1),
        new_table(
            "contact", "contacts", "fullname", has_activities=True, change_tracking=True, otc=2
        ),
        new_table("lead", "leads", "fullname", has_activities=True, change_tracking=True, otc=4),
        new_table(
            "opportunity", "opportunities", "name", has_activities=True, change_tracking=True, otc=3
        ),
        new_table("teammembership", "teammemberships", "", ownership="None", otc=23),
        new_table("appnotification", "appnotifications", "title", otc=4110),
        new_table("annotation", "annotations", "subject", otc=5),
        new_table(
            "publisher", "publishers", "friendlyname", ownership="OrganizationOwned", otc=7101
        ),
        new_table("solution", "solutions", "friendlyname", ownership="OrganizationOwned", otc=7100),
        new_table("activityparty", "activityparties", "", ownership="None", otc=135),
        new_table("activitypointer", "activitypointers", "subject", is_activity=True, otc=4200),
        new_table("task", "tasks", "subject", is_activity=True, otc=4212),
    ]
    for entity in tables:
        _add_standard_columns(entity)
        wire(schema, entity)
    _standard_lookups(schema)
    return schema


_PHONES = {
    "contact": [
        "telephone1",
        "telephone2",
        "telephone3",
        "mobilephone",
        "fax",
        "pager",
        "business2",
        "home2",
        "callback",
        "company",
        "assistantphone",
        "managerphone",
        "address1_telephone1",
        "address1_telephone2",
        "address1_telephone3",
        "address2_telephone1",
        "address2_telephone2",
        "address2_telephone3",
    ],
    "account": [
        "telephone1",
        "telephone2",
        "telephone3",
        "fax",
        "address1_telephone1",
        "address1_telephone2",
        "address1_telephone3",
        "address2_telephone1",
        "address2_telephone2",
        "address2_telephone3",
    ],
    "lead": [
        "telephone1",
        "telephone2",
        "telephone3",
        "mobilephone",
        "pager",
        "fax",
        "address1_telephone1",
        "address1_telephone2",
        "address1_telephone3",
    ],
    "systemuser": ["mobilephone", "address1_telephone1"],
}
_TEXT = {
    "publisher": ["uniquename", "customizationprefix", "description"],
    "solution": ["uniquename", "version", "description"],
    "contact": [
        "firstname",
        "lastname",
        "emailaddress1",
        "jobtitle",
        "address1_city",
        "address1_country",
    ],
    "account": ["accountnumber", "emailaddress1", "address1_city", "address1_country"],
    "lead": [
        "firstname",
        "lastname",
        "subject",
        "companyname",
        "emailaddress1",
        "address1_country",
    ],
    "systemuser": ["firstname", "lastname", "internalemailaddress", "domainname"],
    "opportunity": ["description"],
    "appnotification": ["body", "data"],
    "annotation": ["notetext", "filename", "objecttypecode"],
    "activityparty": ["addressused"],
}


def _add_standard_columns(entity: EntityDef) -> None:
    for name in _PHONES.get(entity.logical_name, []):
        entity.add(_phone(name))
    for name in _TEXT.get(entity.logical_name, []):
        entity.add(_s(name, 4000 if name in ("body", "data", "notetext") else 200))
    name = entity.logical_name
    if name == "systemuser":
        entity.add(AttributeDef("isdisabled", "Boolean"))
        entity.add(AttributeDef("azureactivedirectoryobjectid", "Uniqueidentifier"))
        entity.add(AttributeDef("applicationid", "Uniqueidentifier"))
    if name == "team":
        entity.add(AttributeDef("teamtype", "Picklist", options={0: "Owner", 1: "Access"}))
    if name == "lead":
        entity.attributes["statecode"].options = {0: "Open", 1: "Qualified", 2: "Disqualified"}
    if name == "opportunity":
        entity.attributes["statecode"].options = {0: "Open", 1: "Won", 2: "Lost"}
        entity.add(AttributeDef("estimatedvalue", "Money"))
    if name == "appnotification":
        entity.add(AttributeDef("icontype", "Picklist", options={100000000: "Info"}))
        entity.add(AttributeDef("toasttype", "Picklist", options={200000000: "Timed"}))
        entity.add(AttributeDef("priority", "Picklist", options={200000000: "Normal"}))
        entity.add(AttributeDef("ttlinseconds", "Integer"))
    if name == "activityparty":
        entity.add(AttributeDef("activityid", "Lookup"))
        entity.add(
            AttributeDef(
                "participationtypemask", "Picklist", options={i: str(i) for i in range(1, 12)}
            )
        )
    if name == "publisher":
        entity.add(AttributeDef("customizationoptionvalueprefix", "Integer"))
    if name == "annotation":
        entity.add(AttributeDef("isdocument", "Boolean"))
        entity.add(AttributeDef("mimetype", "String", max_length=256))
        entity.add(AttributeDef("documentbody", "Memo", max_length=None))
        entity.add(AttributeDef("filesize", "Integer"))


def _standard_lookups(schema: Schema) -> None:
    links = [
        (
            "contact",
            "parentcustomerid",
            "account",
            "parentcustomerid_account",
            "contact_customer_accounts",
        ),
        (
            "contact",
            "parentcustomerid",
            "contact",
            "parentcustomerid_contact",
            "contact_customer_contacts",
        ),
        ("account", "primarycontactid", "contact", "primarycontactid", "account_primary_contact"),
        ("account", "parentaccountid", "account", "parentaccountid", "account_parent_account"),
        ("lead", "parentcontactid", "contact", "parentcontactid", "contact_originating_lead"),
        ("lead", "parentaccountid", "account", "parentaccountid", "account_originating_lead"),
        ("lead", "customerid", "account", "customerid_account", "lead_customer_accounts"),
        ("lead", "customerid", "contact", "customerid_contact", "lead_customer_contacts"),
        (
            "opportunity",
            "customerid",
            "account",
            "customerid_account",
            "opportunity_customer_accounts",
        ),
        (
            "opportunity",
            "customerid",
            "contact",
            "customerid_contact",
            "opportunity_customer_contacts",
        ),
        (
            "opportunity",
            "parentaccountid",
            "account",
            "parentaccountid",
            "opportunity_parent_account",
        ),
        (
            "opportunity",
            "parentcontactid",
            "contact",
            "parentcontactid",
            "opportunity_parent_contact",
        ),
        ("solution", "publisherid", "publisher", "publisherid", "publisher_solution"),
        ("teammembership", "systemuserid", "systemuser", "systemuserid", "teammembership_user"),
        ("teammembership", "teamid", "team", "teamid", "teammembership_team"),
        ("annotation", "objectid", "contact", "objectid_contact", "Contact_Annotation"),
        ("annotation", "objectid", "account", "objectid_account", "Account_Annotation"),
        ("annotation", "objectid", "lead", "objectid_lead", "Lead_Annotation"),
    ]
    for entity, attr, target, nav, coll in links:
        _lookup(schema, (entity, attr, target, nav, coll))
    add_many_to_many(schema)
    for target in PARTY_TARGETS:
        link = (
            "activityparty",
            "partyid",
            target,
            f"partyid_{target}",
            f"{target}_activity_parties",
        )
        _lookup(schema, link)
    schema.entities["activityparty"].attributes["partyid"].attribute_type = "Lookup"


def add_many_to_many(schema: Schema) -> None:
    """The standard many-to-many navigations (team members through teammembership)."""
    association = "teammembership_association"
    team_side = ManyNav(association, "systemuser", "teammembership", "teamid", "systemuserid")
    user_side = ManyNav(association, "team", "teammembership", "systemuserid", "teamid")
    schema.add_many("team", team_side)
    schema.add_many("systemuser", user_side)
