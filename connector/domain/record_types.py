"""From a configuration and its record types to what resolution and the phone sync use (pure).

The standard tables the phone index reads (contact, account, lead, opportunity) are described
once here (entity set, id and name columns, country column, parent lookups); a
:class:`~connector.domain.model.RecordType` row becomes a :class:`RecordTypeSpec`, and a
:class:`~connector.domain.model.Configuration` with its record types becomes the
:class:`~connector.domain.routing.SenderContext` the resolver ranks candidates for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connector.domain.model import Configuration, RecordType
from connector.domain.phone_records import RecordTypeSpec
from connector.domain.routing import SenderContext


@dataclass(frozen=True, slots=True)
class TableShape:
    """The fixed facts of a standard table the phone index reads."""

    entity_set: str
    id_column: str
    name_column: str
    country_column: str | None = None
    parent_columns: Mapping[str, str] = field(default_factory=dict)


STANDARD_TABLES: Mapping[str, TableShape] = {
    "contact": TableShape("contacts", "contactid", "fullname", "address1_country"),
    "account": TableShape("accounts", "accountid", "name", "address1_country"),
    "lead": TableShape("leads", "leadid", "fullname", "address1_country"),
    "opportunity": TableShape(
        "opportunities",
        "opportunityid",
        "name",
        parent_columns={"_parentcontactid_value": "contact", "_parentaccountid_value": "account"},
    ),
}
DEFAULT_PHONE_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "contact": ("mobilephone", "telephone1", "telephone2"),
    "account": ("telephone1", "telephone2"),
    "lead": ("mobilephone", "telephone1"),
    "opportunity": (),
}


def standard_spec(
    table: str,
    phone_columns: Sequence[str] | None = None,
    default_country: str | None = None,
    *,
    change_tracking: bool = False,
) -> RecordTypeSpec:
    """The spec of a standard table (contact, account, lead, opportunity)."""
    shape = STANDARD_TABLES[table]
    columns = DEFAULT_PHONE_COLUMNS[table] if phone_columns is None else tuple(phone_columns)
    return RecordTypeSpec(
        table=table,
        entity_set=shape.entity_set,
        id_column=shape.id_column,
        name_column=shape.name_column,
        phone_columns=columns,
        parent_columns=shape.parent_columns if not columns else {},
        country_column=shape.country_column,
        default_country=default_country,
        change_tracking=change_tracking,
    )


def default_specs(default_country: str | None = None) -> tuple[RecordTypeSpec, ...]:
    """Contact, account, opportunity (through its parents) and lead, in default priority."""
    return tuple(
        standard_spec(t, default_country=default_country)
        for t in ("contact", "account", "opportunity", "lead")
    )


def spec_for(record_type: RecordType, *, change_tracking: bool = False) -> RecordTypeSpec:
    """The sync / lookup spec of a configured record type.

    Standard tables use their known shape; any other table is read as ``<table>s`` with
    ``<table>id`` and ``name`` (the Dataverse defaults for custom tables).
    """
    shape = STANDARD_TABLES.get(record_type.table) or TableShape(
        f"{record_type.table}s", f"{record_type.table}id", "name"
    )
    parents = {f"_{col}_value": table for col, table in record_type.parent_lookups.items()}
    return RecordTypeSpec(
        table=record_type.table,
        entity_set=shape.entity_set,
        id_column=shape.id_column,
        name_column=shape.name_column,
        phone_columns=tuple(record_type.phone_columns),
        parent_columns=parents or (shape.parent_columns if not record_type.phone_columns else {}),
        country_column=shape.country_column,
        default_country=record_type.default_country,
        change_tracking=change_tracking,
        compliance_column=record_type.compliance_column,
    )


def specs_for(record_types: Sequence[RecordType]) -> tuple[RecordTypeSpec, ...]:
    """Specs of the active record types, in priority order."""
    active = sorted((r for r in record_types if r.active), key=lambda r: r.priority)
    return tuple(spec_for(r) for r in active)


def sender_context(
    configuration: Configuration, record_types: Sequence[RecordType]
) -> SenderContext:
    """Who owns the sender and how its record types rank, for the routing rules."""
    return SenderContext(
        configuration_id=configuration.id or configuration.sender_key,
        owner_id=configuration.owner_id,
        team_id=configuration.owning_team_id,
        table_priority=tuple(s.table for s in specs_for(record_types)),
        default_country=configuration.default_country,
    )
