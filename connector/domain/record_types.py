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

from connector.domain.phone_records import RecordTypeSpec


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
