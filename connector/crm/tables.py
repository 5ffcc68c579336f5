"""THE mapping module: logical names of the connector's tables and columns, rows <-> models.

Logical names live in ``solution_schema/`` (what gets installed) and here (what the code
uses); a unit test checks that every name here is declared there. Other modules import the
``*_TABLE`` descriptors and conversion functions and never spell a ``smsc_`` name themselves.

Row conversion is pure: ``*_from_row`` takes a Web API JSON row (lookups as
``_<column>_value``), ``*_to_row`` builds a create/update body (lookups as
``<Navigation>@odata.bind``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

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
from connector.domain.record_types import STANDARD_TABLES
from connector.errors import ConfigurationError

PREFIX = "smsc"
SOLUTION_UNIQUE_NAME = "SmsConnector"


@dataclass(frozen=True, slots=True)
class Table:
    """A table's logical name, entity set, primary key and primary name column."""

    logical_name: str
    entity_set: str
    id_column: str
    name_column: str

    def value(self, lookup: str) -> str:
        """The ``_x_value`` read-back name of lookup column ``lookup``."""
        return f"_{lookup}_value"


def _standard(name: str, primary: str = "smsc_name") -> Table:
    return Table(name, f"{name}s", f"{name}id", primary)


def _activity(name: str) -> Table:
    return Table(name, f"{name}s", "activityid", "subject")


CONFIGURATION = _standard("smsc_configuration")
RECORD_TYPE = _standard("smsc_recordtype")
TEMPLATE = _standard("smsc_template", "smsc_title")
KEYWORD = _standard("smsc_keyword", "smsc_keyword")
CONSENT = _standard("smsc_consent")
BLOCKED_NUMBER = _standard("smsc_blockednumber")
ERROR_LOG = _standard("smsc_errorlog")
SESSION = _activity("smsc_session")
MESSAGE = _activity("smsc_message")
ALL_TABLES = (
    CONFIGURATION,
    RECORD_TYPE,
    TEMPLATE,
    KEYWORD,
    CONSENT,
    BLOCKED_NUMBER,
    SESSION,
    MESSAGE,
    ERROR_LOG,
)

# The CRM's own tables the connector reads and links to, with ours: by logical name.
CRM_TABLES: Mapping[str, Table] = MappingProxyType(
    {
        **{
            n: Table(n, s.entity_set, s.id_column, s.name_column)
            for n, s in STANDARD_TABLES.items()
        },
        "systemuser": Table("systemuser", "systemusers", "systemuserid", "fullname"),
        "team": Table("team", "teams", "teamid", "name"),
        **{t.logical_name: t for t in ALL_TABLES},
    }
)


def crm_table(logical_name: str) -> Table | None:
    """The descriptor of a table the connector knows by name (None: ask the metadata)."""
    return CRM_TABLES.get(logical_name)


def entity_set(logical_name: str) -> str:
    """The entity set of a table: the known one, else Dataverse's default ``<name>s``."""
    known = CRM_TABLES.get(logical_name)
    return known.entity_set if known else f"{logical_name}s"


# Lookups: column logical name -> navigation property used with @odata.bind.
CONFIGURATION_LOOKUP = "smsc_configurationid"
CONFIGURATION_NAV = "smsc_ConfigurationId"
RELATED_RECORD_TYPE_LOOKUP = "smsc_relatedrecordtypeid"
RELATED_RECORD_TYPE_NAV = "smsc_RelatedRecordTypeId"
OWNING_TEAM_LOOKUP = "smsc_owningteamid"
OWNING_TEAM_NAV = "smsc_OwningTeamId"
SESSION_LOOKUP = "smsc_sessionid"  # on smsc_message: the conversation it belongs to
SESSION_MATCH_TRACE = "smsc_matchtrace"  # on smsc_session: why its regarding was chosen

# Alternate keys (name -> columns), as declared in solution_schema/tables/*.yaml.
CONFIGURATION_SENDER_KEY = ("smsc_senderkey",)
RECORD_TYPE_KEY = ("smsc_configurationid", "smsc_tablename")
KEYWORD_KEY = ("smsc_configurationid", "smsc_keyword")
CONSENT_KEY = ("smsc_phone", "smsc_configurationid", "smsc_purpose")
MESSAGE_PROVIDER_ID = "smsc_providermessageid"


def _invert(mapping: Mapping[Any, int]) -> Mapping[int, Any]:
    return MappingProxyType({v: k for k, v in mapping.items()})


# Stable option values (publisher option prefix 10571); never renumber, only add.
PROVIDER_OPTIONS: Mapping[Provider, int] = MappingProxyType(
    {Provider.TWILIO: 105710000, Provider.ACS: 105710001, Provider.SIMULATOR: 105710002}
)
VALIDATION_OPTIONS: Mapping[ValidationStatus, int] = MappingProxyType(
    {
        ValidationStatus.DRAFT: 105710000,
        ValidationStatus.VALID: 105710001,
        ValidationStatus.INVALID: 105710002,
    }
)
KEYWORD_ACTION_OPTIONS: Mapping[KeywordAction, int] = MappingProxyType(
    {
        KeywordAction.OPT_OUT: 105710000,
        KeywordAction.OPT_IN: 105710001,
        KeywordAction.HELP: 105710002,
        KeywordAction.CONFIRM: 105710003,
        KeywordAction.AUTO_REPLY: 105710004,
    }
)
CATEGORY_OPTIONS: Mapping[MessageCategory, int] = MappingProxyType(
    {MessageCategory.TRANSACTIONAL: 105710000, MessageCategory.COMMERCIAL: 105710001}
)
# Choice columns whose options tables.py maps, for the consistency test: (table, column).
MAPPED_CHOICES: Mapping[tuple[str, str], Mapping[Any, int]] = MappingProxyType(
    {
        ("smsc_configuration", "smsc_provider"): PROVIDER_OPTIONS,
        ("smsc_configuration", "smsc_validationstatus"): VALIDATION_OPTIONS,
        ("smsc_keyword", "smsc_action"): KEYWORD_ACTION_OPTIONS,
        ("smsc_template", "smsc_category"): CATEGORY_OPTIONS,
    }
)


def _choice(options: Mapping[Any, int], value: Any, column: str) -> Any:
    try:
        return _invert(options)[int(value)]
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError(
            f"unknown option value {value!r} in column {column}",
            details={"column": column, "value": value},
        ) from None


def _text(row: Mapping[str, Any], column: str) -> str | None:
    value = row.get(column)
    return str(value) if value not in (None, "") else None


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _bind(entity_set: str, row_id: str | None) -> str | None:
    return f"/{entity_set}({row_id})" if row_id else None


def configuration_from_row(row: Mapping[str, Any]) -> Configuration:
    """A :class:`Configuration` from an ``smsc_configuration`` row."""
    sender = _text(row, "smsc_sendernumber") or ""
    rate = row.get("smsc_sendingrate")
    return Configuration(
        id=_text(row, CONFIGURATION.id_column),
        name=_text(row, "smsc_name") or sender,
        provider=_choice(PROVIDER_OPTIONS, row.get("smsc_provider"), "smsc_provider"),
        sender_number=sender if not sender or sender.startswith("+") else f"+{sender}",
        messaging_service_id=_text(row, "smsc_messagingserviceid"),
        account_id=_text(row, "smsc_accountid"),
        secret=_text(row, "smsc_secret"),
        callback_url=_text(row, "smsc_callbackurl"),
        allow_create_to=_csv(_text(row, "smsc_allowcreateto")),
        session_timeout_minutes=int(row.get("smsc_sessiontimeout") or 1440),
        idle_timeout_minutes=int(row.get("smsc_idletimeout") or 5),
        owning_team_id=_text(row, CONFIGURATION.value(OWNING_TEAM_LOOKUP)),
        owner_id=_text(row, "_ownerid_value"),
        default_country=_text(row, "smsc_defaultcountry"),
        quiet_hours=_text(row, "smsc_quiethours"),
        rate_per_second=float(rate) if rate is not None else None,
        last_validated_on=_when(row.get("smsc_lastvalidatedon")),
        validation_status=_choice(
            VALIDATION_OPTIONS,
            row.get("smsc_validationstatus") or VALIDATION_OPTIONS[ValidationStatus.DRAFT],
            "smsc_validationstatus",
        ),
        validation_message=_text(row, "smsc_validationmessage"),
        active=row.get("smsc_active", True) is not False,
    )


def configuration_to_row(config: Configuration) -> dict[str, Any]:
    """The create/update body of an ``smsc_configuration`` row (no primary key)."""
    row: dict[str, Any] = {
        "smsc_name": config.name,
        "smsc_provider": PROVIDER_OPTIONS[config.provider],
        "smsc_sendernumber": config.sender_number,
        "smsc_senderkey": config.sender_key,
        "smsc_messagingserviceid": config.messaging_service_id,
        "smsc_accountid": config.account_id,
        "smsc_callbackurl": config.callback_url,
        "smsc_allowcreateto": ",".join(config.allow_create_to),
        "smsc_sessiontimeout": config.session_timeout_minutes,
        "smsc_idletimeout": config.idle_timeout_minutes,
        "smsc_defaultcountry": config.default_country,
        "smsc_quiethours": config.quiet_hours,
        "smsc_sendingrate": config.rate_per_second,
        "smsc_validationstatus": VALIDATION_OPTIONS[config.validation_status],
        "smsc_validationmessage": config.validation_message,
        "smsc_active": config.active,
    }
    if config.secret is not None:
        row["smsc_secret"] = config.secret
    if config.last_validated_on is not None:
        row["smsc_lastvalidatedon"] = config.last_validated_on.isoformat()
    if config.owning_team_id:
        row[f"{OWNING_TEAM_NAV}@odata.bind"] = _bind("teams", config.owning_team_id)
    if config.owner_id:
        row["ownerid@odata.bind"] = _bind("systemusers", config.owner_id)
    return row


def _parent_lookups(value: str | None) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in _csv(value))
    return {column.strip(): table.strip() for column, table in pairs}


def record_type_from_row(row: Mapping[str, Any]) -> RecordType:
    """A :class:`RecordType` from an ``smsc_recordtype`` row."""
    table = _text(row, "smsc_tablename")
    if table is None:
        raise ConfigurationError("a record type row has no table name", details=dict(row))
    return RecordType(
        id=_text(row, RECORD_TYPE.id_column),
        configuration_id=_text(row, RECORD_TYPE.value(CONFIGURATION_LOOKUP)),
        table=table,
        phone_columns=_csv(_text(row, "smsc_phonecolumns")),
        compliance_column=_text(row, "smsc_compliancecolumn"),
        default_country=_text(row, "smsc_defaultcountry"),
        priority=int(row.get("smsc_priority") or 100),
        related_record_type_id=_text(row, RECORD_TYPE.value(RELATED_RECORD_TYPE_LOOKUP)),
        parent_lookups=MappingProxyType(_parent_lookups(_text(row, "smsc_parentlookups"))),
        active=row.get("smsc_active", True) is not False,
    )


def record_type_to_row(record_type: RecordType) -> dict[str, Any]:
    """The create/update body of an ``smsc_recordtype`` row."""
    lookups = ",".join(f"{c}={t}" for c, t in record_type.parent_lookups.items())
    row: dict[str, Any] = {
        "smsc_name": record_type.table,
        "smsc_tablename": record_type.table,
        "smsc_phonecolumns": ",".join(record_type.phone_columns),
        "smsc_compliancecolumn": record_type.compliance_column,
        "smsc_defaultcountry": record_type.default_country,
        "smsc_priority": record_type.priority,
        "smsc_parentlookups": lookups or None,
        "smsc_active": record_type.active,
    }
    if record_type.configuration_id:
        row[f"{CONFIGURATION_NAV}@odata.bind"] = _bind(
            CONFIGURATION.entity_set, record_type.configuration_id
        )
    if record_type.related_record_type_id:
        row[f"{RELATED_RECORD_TYPE_NAV}@odata.bind"] = _bind(
            RECORD_TYPE.entity_set, record_type.related_record_type_id
        )
    return row


def keyword_from_row(row: Mapping[str, Any]) -> Keyword:
    """A :class:`Keyword` from an ``smsc_keyword`` row."""
    return Keyword(
        id=_text(row, KEYWORD.id_column),
        keyword=_text(row, "smsc_keyword") or "",
        action=_choice(KEYWORD_ACTION_OPTIONS, row.get("smsc_action"), "smsc_action"),
        reply_text=_text(row, "smsc_replytext"),
        configuration_id=_text(row, KEYWORD.value(CONFIGURATION_LOOKUP)),
        active=row.get("smsc_active", True) is not False,
    )


def keyword_to_row(keyword: Keyword) -> dict[str, Any]:
    """The create/update body of an ``smsc_keyword`` row."""
    row: dict[str, Any] = {
        "smsc_keyword": keyword.normalized,
        "smsc_action": KEYWORD_ACTION_OPTIONS[keyword.action],
        "smsc_replytext": keyword.reply_text,
        "smsc_active": keyword.active,
    }
    if keyword.configuration_id:
        row[f"{CONFIGURATION_NAV}@odata.bind"] = _bind(
            CONFIGURATION.entity_set, keyword.configuration_id
        )
    return row


TEMPLATE_COLUMNS = (
    TEMPLATE.id_column,
    "smsc_title",
    "smsc_body",
    "smsc_scope",
    "smsc_category",
    "smsc_language",
    "smsc_published",
)
"""The columns :func:`template_from_row` reads (a ``$select``)."""


def template_from_row(row: Mapping[str, Any]) -> Template:
    """A :class:`Template` from an ``smsc_template`` row."""
    category = row.get("smsc_category") or CATEGORY_OPTIONS[MessageCategory.TRANSACTIONAL]
    return Template(
        id=_text(row, TEMPLATE.id_column),
        title=_text(row, "smsc_title") or "",
        body=_text(row, "smsc_body") or "",
        scope=_text(row, "smsc_scope"),
        category=_choice(CATEGORY_OPTIONS, category, "smsc_category"),
        language=_text(row, "smsc_language"),
        published=bool(row.get("smsc_published", False)),
    )


def template_to_row(template: Template) -> dict[str, Any]:
    """The create/update body of an ``smsc_template`` row."""
    return {
        "smsc_title": template.title,
        "smsc_body": template.body,
        "smsc_scope": template.scope,
        "smsc_category": CATEGORY_OPTIONS[template.category],
        "smsc_language": template.language,
        "smsc_published": template.published,
    }
