"""Configured record types become sync specs and the sender context the rules rank for."""

from __future__ import annotations

from types import MappingProxyType

from connector.domain.model import Configuration, Provider, RecordType
from connector.domain.record_types import sender_context, spec_for, specs_for


def test_standard_record_type_keeps_its_columns_and_country() -> None:
    spec = spec_for(RecordType("contact", phone_columns=("mobilephone",), default_country="GB"))
    assert (spec.entity_set, spec.id_column, spec.name_column) == (
        "contacts",
        "contactid",
        "fullname",
    )
    assert spec.phone_columns == ("mobilephone",)
    assert spec.default_country == "GB"
    assert not spec.related


def test_opportunity_through_its_parent_lookups() -> None:
    spec = spec_for(
        RecordType("opportunity", parent_lookups=MappingProxyType({"parentcontactid": "contact"}))
    )
    assert spec.related
    assert dict(spec.parent_columns) == {"_parentcontactid_value": "contact"}


def test_custom_table_uses_dataverse_default_names() -> None:
    spec = spec_for(RecordType("smsc_pet", phone_columns=("smsc_phone",)))
    assert (spec.entity_set, spec.id_column) == ("smsc_pets", "smsc_petid")


def test_sender_context_orders_tables_by_priority_and_skips_inactive() -> None:
    config = Configuration(
        name="Sales",
        provider=Provider.TWILIO,
        sender_number="+14155550100",
        id="cfg-1",
        owner_id="u1",
        owning_team_id="t1",
        default_country="US",
    )
    types = [
        RecordType("lead", phone_columns=("mobilephone",), priority=4),
        RecordType("contact", phone_columns=("mobilephone",), priority=1),
        RecordType("account", phone_columns=("telephone1",), priority=2, active=False),
    ]
    ctx = sender_context(config, types)
    assert ctx.table_priority == ("contact", "lead")
    assert (ctx.configuration_id, ctx.owner_id, ctx.team_id) == ("cfg-1", "u1", "t1")
    assert ctx.default_country == "US"
    assert [s.table for s in specs_for(types)] == ["contact", "lead"]
