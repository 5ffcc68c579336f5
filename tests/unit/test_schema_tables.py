"""Row <-> model conversion of the mapping module (connector.crm.tables)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from connector.crm import tables
from connector.domain.consent import ConsentChange, ConsentMethod, ConsentStatus, Evidence
from connector.domain.model import (
    Configuration,
    Keyword,
    KeywordAction,
    MessageCategory,
    Provider,
    RecordType,
    Template,
    ValidationStatus,
)
from connector.errors import ConfigurationError, InvalidInputError

CONFIG_ID = "6f1c2b7e-8d2a-4c43-9d5e-0a1b2c3d4e5f"
TEAM_ID = "0b7e6f1c-2a8d-434c-9e5d-5f4e3d2c1b0a"

SAMPLES: dict[str, Any] = {
    "smsc_configuration": Configuration(
        name="Main line",
        provider=Provider.TWILIO,
        sender_number="+14155550100",
        account_id="AC" + "0" * 32,
        secret="gAAAA-token",
        callback_url="https://sms.example.com/webhooks/twilio/messages",
        allow_create_to=("lead", "contact"),
        owning_team_id=TEAM_ID,
        owner_id=CONFIG_ID,
        default_country="US",
        time_zone="America/New_York",
        help_text="Main line: reply STOP to opt out.",
        opt_in_text="Reply YES to get offers from {name}.",
        opt_in_expiry_hours=48,
        rate_per_second=1.5,
        last_validated_on=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        validation_status=ValidationStatus.VALID,
    ),
    "smsc_recordtype": RecordType(
        table="opportunity",
        configuration_id=CONFIG_ID,
        priority=3,
        related_record_type_id=TEAM_ID,
        parent_lookups=MappingProxyType(
            {"parentcontactid": "contact", "parentaccountid": "account"}
        ),
    ),
    "smsc_keyword": Keyword(" stop ", KeywordAction.OPT_OUT, "Bye", configuration_id=CONFIG_ID),
    "smsc_template": Template("Hi", "Hello {firstname|there}", scope="contact", published=True),
}


def _as_read(row: dict[str, Any], table: tables.Table, row_id: str) -> dict[str, Any]:
    """What the Web API returns for a row written with ``row``: binds become _x_value."""
    out: dict[str, Any] = {table.id_column: row_id}
    for name, value in row.items():
        if name.endswith("@odata.bind"):
            column = name.removesuffix("@odata.bind").lower()
            out[f"_{column}_value"] = value.rsplit("(", 1)[1].rstrip(")")
        else:
            out[name] = value
    return out


def test_configuration_round_trips_through_a_row() -> None:
    config: Configuration = SAMPLES["smsc_configuration"]
    row = tables.configuration_to_row(config)
    assert row["smsc_senderkey"] == "14155550100"
    assert row["smsc_provider"] == 105710000
    assert row["smsc_OwningTeamId@odata.bind"] == f"/teams({TEAM_ID})"
    assert (row["smsc_timezone"], row["smsc_optinexpiry"]) == ("America/New_York", 48)
    assert row["smsc_helptext"] == "Main line: reply STOP to opt out."
    assert row["smsc_optintext"] == "Reply YES to get offers from {name}."
    back = tables.configuration_from_row(_as_read(row, tables.CONFIGURATION, CONFIG_ID))
    assert back == Configuration(**{**_fields(config), "id": CONFIG_ID})


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def test_configuration_typed_without_plus_reads_as_e164_with_defaults() -> None:
    config = tables.configuration_from_row(
        {
            "smsc_configurationid": CONFIG_ID,
            "smsc_sendernumber": "14155550100",
            "smsc_provider": 105710002,
        }
    )
    assert config.sender_number == "+14155550100"
    assert config.provider is Provider.SIMULATOR
    assert (config.session_timeout_minutes, config.idle_timeout_minutes) == (1440, 5)
    assert config.validation_status is ValidationStatus.DRAFT
    assert config.active
    assert (config.time_zone, config.help_text, config.opt_in_text) == (None, None, None)
    assert config.opt_in_expiry_hours == 72


def test_configuration_consent_texts_left_empty_read_as_unset() -> None:
    config = tables.configuration_from_row(
        {
            "smsc_sendernumber": "+14155550100",
            "smsc_provider": 105710000,
            "smsc_timezone": "",
            "smsc_helptext": "",
            "smsc_optintext": None,
            "smsc_optinexpiry": None,
        }
    )
    assert (config.time_zone, config.help_text, config.opt_in_text) == (None, None, None)
    assert config.opt_in_expiry_hours == 72


def test_record_type_round_trips_with_parent_lookups() -> None:
    record_type: RecordType = SAMPLES["smsc_recordtype"]
    row = tables.record_type_to_row(record_type)
    assert row["smsc_parentlookups"] == "parentcontactid=contact,parentaccountid=account"
    back = tables.record_type_from_row(_as_read(row, tables.RECORD_TYPE, TEAM_ID))
    assert back.related and back.table == "opportunity" and back.priority == 3
    assert dict(back.parent_lookups) == dict(record_type.parent_lookups)
    assert back.configuration_id == CONFIG_ID and back.related_record_type_id == TEAM_ID


def test_record_type_keeps_phone_column_order() -> None:
    row = {
        "smsc_recordtypeid": CONFIG_ID,
        "smsc_tablename": "contact",
        "smsc_phonecolumns": "telephone2, mobilephone,telephone1",
    }
    assert tables.record_type_from_row(row).phone_columns == (
        "telephone2",
        "mobilephone",
        "telephone1",
    )


def test_keyword_is_stored_upper_case_and_round_trips() -> None:
    row = tables.keyword_to_row(SAMPLES["smsc_keyword"])
    assert row["smsc_keyword"] == "STOP"
    back = tables.keyword_from_row(_as_read(row, tables.KEYWORD, TEAM_ID))
    assert (back.keyword, back.action, back.configuration_id) == (
        "STOP",
        KeywordAction.OPT_OUT,
        CONFIG_ID,
    )


def test_template_round_trips() -> None:
    template: Template = SAMPLES["smsc_template"]
    back = tables.template_from_row(
        _as_read(tables.template_to_row(template), tables.TEMPLATE, CONFIG_ID)
    )
    assert back == Template(**{**_fields(template), "id": CONFIG_ID})
    assert back.category is MessageCategory.TRANSACTIONAL


def test_unknown_option_value_names_the_column() -> None:
    with pytest.raises(ConfigurationError, match="smsc_action"):
        tables.keyword_from_row({"smsc_keyword": "X", "smsc_action": 42})


def test_record_type_row_without_table_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no table name"):
        tables.record_type_from_row({"smsc_recordtypeid": CONFIG_ID})


def _consent_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "smsc_consentid": TEAM_ID,
        "smsc_phone": "14155550123",
        "_smsc_configurationid_value": CONFIG_ID,
        "smsc_purpose": 105710001,
        "smsc_status": 105710001,
        "smsc_method": 105710000,
        "smsc_evidencemessageid": "SM1",
        "smsc_evidencetext": "STOP",
        "smsc_evidenceon": "2026-01-02T03:04:05Z",
        "smsc_evidencesource": "twilio",
        "smsc_pendingexpireson": None,
        "modifiedon": "2026-01-02T03:04:06Z",
        "versionnumber": 1234,
    }
    row.update(changes)
    return row


def test_consent_row_reads_as_a_change_with_an_id_per_edit() -> None:
    change = tables.consent_from_row(_consent_row())
    assert (change.phone, change.configuration_id) == ("+14155550123", CONFIG_ID)
    assert (change.purpose, change.status, change.method) == (
        MessageCategory.COMMERCIAL,
        ConsentStatus.OPTED_OUT,
        ConsentMethod.KEYWORD,
    )
    assert change.evidence == Evidence(
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp(), "twilio", "SM1", "STOP"
    )
    assert tables.consent_from_row(_consent_row()).id == change.id
    assert tables.consent_from_row(_consent_row(versionnumber=1235)).id != change.id
    assert tables.consent_from_row(_consent_row(modifiedon="2026-01-03T00:00:00Z")).id != change.id


def test_consent_row_an_admin_made_defaults_method_source_and_time() -> None:
    row = _consent_row(
        smsc_method=None, smsc_evidenceon=None, smsc_evidencesource=None, smsc_status=105710002
    )
    row["smsc_pendingexpireson"] = "2026-01-05T00:00:00Z"
    change = tables.consent_from_row(row)
    assert change.method is ConsentMethod.ADMINISTRATOR and change.status is ConsentStatus.PENDING
    assert change.evidence.source == "dataverse"
    assert change.evidence.at == datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC).timestamp()
    assert change.expires_at == datetime(2026, 1, 5, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"_smsc_configurationid_value": None}, "no phone or no configuration"),
        ({"smsc_phone": None}, "no phone or no configuration"),
        ({"smsc_status": None}, "no status"),
        ({"smsc_status": 42}, "smsc_status"),
        ({"smsc_method": 42}, "smsc_method"),
        ({"smsc_purpose": 42}, "smsc_purpose"),
    ],
)
def test_consent_row_that_cannot_be_read_is_a_configuration_error(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        tables.consent_from_row(_consent_row(**changes))


def _change(**changes: Any) -> ConsentChange:
    base = ConsentChange(
        id=TEAM_ID,
        phone="+14155550123",
        configuration_id=CONFIG_ID,
        purpose=MessageCategory.TRANSACTIONAL,
        status=ConsentStatus.OPTED_IN,
        method=ConsentMethod.API,
        evidence=Evidence(1_767_000_000.0, "api"),
    )
    return replace(base, **changes)


def test_consent_key_and_rows_carry_the_whole_state() -> None:
    key = tables.consent_key("+14155550123", CONFIG_ID, MessageCategory.COMMERCIAL)
    assert key == {
        "smsc_phone": "14155550123",
        "_smsc_configurationid_value": uuid.UUID(CONFIG_ID),
        "smsc_purpose": 105710001,
    }
    current = tables.consent_to_row(_change())
    assert current["smsc_name"] == "+14155550123 (transactional)"
    assert current["smsc_ConfigurationId@odata.bind"] == f"/smsc_configurations({CONFIG_ID})"
    assert current["smsc_evidenceon"] == "2025-12-29T09:20:00Z"
    assert current["smsc_pendingexpireson"] is None and current["smsc_evidencetext"] is None
    history = tables.consent_change_to_row(_change(), "/smsc_consents(x)")
    assert history["smsc_ConsentId@odata.bind"] == "/smsc_consents(x)"
    assert history["smsc_name"] == "Opted in by API: +14155550123 (transactional)"
    keyword = _change(
        method=ConsentMethod.KEYWORD, evidence=Evidence(0.0, "twilio", "SM1", "stop\nnow")
    )
    assert tables.consent_change_name(keyword) == "stop from +14155550123 (transactional)"


@pytest.mark.parametrize(
    ("phone", "configuration_id"), [("14155550123", CONFIG_ID), ("+14155550123", "cfg-1")]
)
def test_consent_key_refuses_what_key_addressing_cannot_carry(
    phone: str, configuration_id: str
) -> None:
    with pytest.raises(InvalidInputError):
        tables.consent_key(phone, configuration_id, MessageCategory.COMMERCIAL)
