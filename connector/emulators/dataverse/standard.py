"""The seeded standard tables: contact, account, lead, opportunity, users, teams and the rest.

contact, account, lead, opportunity, systemuser, team, businessunit and activitypointer carry
the columns of Microsoft's table reference (``reference_columns.py``); besides those, real
column names (the phone columns of section 7 of the Web API notes, names, e-mail),
state codes (lead: Open/Qualified/Disqualified, opportunity: Open/Won/Lost), lookups with
their navigation-property names (``parentcustomerid_account``, ``customerid_contact``...),
team membership, publisher and solution.
"""

from __future__ import annotations

from connector.emulators.dataverse.components import component_tables
from connector.emulators.dataverse.metadata import AttributeDef, EntityDef
from connector.emulators.dataverse.reference_columns import add_reference_columns
from connector.emulators.dataverse.schema import ManyNav, Schema, one_to_many
from connector.emulators.dataverse.seed import (
    PARTY_TARGETS,
    new_table,
    phone_column,
    string_column,
    wire,
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
        *component_tables(),
    ]
    names = {entity.logical_name for entity in tables}
    for entity in tables:
        _add_standard_columns(entity)
        add_reference_columns(entity, names)
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
        entity.add(phone_column(name))
    for name in _TEXT.get(entity.logical_name, []):
        entity.add(string_column(name, 4000 if name in ("body", "data", "notetext") else 200))
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
                "participationtypemask", "Picklist", options={i: str(i) for i in range(1, 13)}
            )
        )
    if name == "publisher":
        entity.add(AttributeDef("customizationoptionvalueprefix", "Integer"))
    if name == "annotation":
        entity.add(AttributeDef("isdocument", "Boolean"))
        entity.add(AttributeDef("mimetype", "String", max_length=256))
        entity.add(AttributeDef("documentbody", "Memo", max_length=None))
        entity.add(AttributeDef("filesize", "Integer"))


# (table, lookup column, target, single-valued navigation, relationship / collection name)
_LINKS = """
contact parentcustomerid account parentcustomerid_account contact_customer_accounts
contact parentcustomerid contact parentcustomerid_contact contact_customer_contacts
account primarycontactid contact primarycontactid account_primary_contact
account parentaccountid account parentaccountid account_parent_account
lead parentcontactid contact parentcontactid contact_originating_lead
lead parentaccountid account parentaccountid account_originating_lead
lead customerid account customerid_account lead_customer_accounts
lead customerid contact customerid_contact lead_customer_contacts
opportunity customerid account customerid_account opportunity_customer_accounts
opportunity customerid contact customerid_contact opportunity_customer_contacts
opportunity parentaccountid account parentaccountid opportunity_parent_account
opportunity parentcontactid contact parentcontactid opportunity_parent_contact
solution publisherid publisher publisherid publisher_solution
teammembership systemuserid systemuser systemuserid teammembership_user
teammembership teamid team teamid teammembership_team
role businessunitid businessunit businessunitid business_unit_roles
annotation objectid contact objectid_contact Contact_Annotation
annotation objectid account objectid_account Account_Annotation
annotation objectid lead objectid_lead Lead_Annotation
"""


def _standard_lookups(schema: Schema) -> None:
    for line in _LINKS.strip().splitlines():
        entity, attr, target, nav, coll = line.split()
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
