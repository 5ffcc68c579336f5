"""THE mapping module: logical names of the connector's tables and columns, rows <-> models.

Logical names live in ``solution_schema/`` (what gets installed) and here (what the code
uses); a unit test checks that every name here is declared there. Other modules import the
``*_TABLE`` descriptors and conversion functions and never spell a ``smsc_`` name themselves.

Row conversion is pure: ``*_from_row`` takes a Web API JSON row (lookups as
``_<column>_value``), ``*_to_row`` builds a create/update body (lookups as
``<Navigation>@odata.bind``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from connector.domain.consent import (
    ConsentChange,
    ConsentMethod,
    ConsentStatus,
    Evidence,
    change_id,
)
from connector.domain.model import (
    DEFAULT_OPT_IN_EXPIRY_HOURS,
    Configuration,
    Keyword,
    KeywordAction,
    MessageCategory,
    Provider,
    RecordType,
    Template,
    ValidationStatus,
)
from connector.domain.phone import to_key_value
from connector.domain.record_types import STANDARD_TABLES
from connector.errors import ConfigurationError, InvalidInputError

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
CONSENT_CHANGE = _standard("smsc_consentchange")
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
    CONSENT_CHANGE,
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
CONSENT_LOOKUP = "smsc_consentid"  # on smsc_consentchange: the current row it changed
CONSENT_NAV = "smsc_ConsentId"
SESSION_LOOKUP = "smsc_sessionid"  # on smsc_message: the conversation it belongs to
SESSION_MATCH_TRACE = "smsc_matchtrace"  # on smsc_session: why its regarding was chosen

# Session columns the messages page and its read API use (session.yaml).
SESSION_FOLDER = "smsc_folder"  # Inbox / Archived
SESSION_FOLDER_OPTIONS: Mapping[bool, int] = MappingProxyType(
    {False: 105710000, True: 105710001}  # archived? -> option value
)
SESSION_UNREAD = "smsc_unreadcount"
SESSION_PHONE = "smsc_customerphone"
SESSION_LAST_MESSAGE = "smsc_lastmessageon"
SESSION_ACCEPTANCE = "smsc_acceptance"
# Message columns the thread pane reads (message.yaml), and the notes (MMS media) under a
# message: the one-to-many relationship Dataverse makes for a table with notes.
MESSAGE_NOTES = f"{MESSAGE.logical_name}_Annotations"
MESSAGE_DIRECTION = "smsc_direction"
MESSAGE_BODY = "smsc_body"
MESSAGE_FROM = "smsc_from"
MESSAGE_TO = "smsc_to"
MESSAGE_STATUS = "smsc_status"
MESSAGE_FAILURE_CATEGORY = "smsc_failurecategory"
MESSAGE_ERROR_CODE = "smsc_providererrorcode"
MESSAGE_ERROR_TEXT = "smsc_providererrortext"
MESSAGE_SEGMENTS = "smsc_segments"
MESSAGE_SENT_ON = "smsc_senton"
MESSAGE_DELIVERED_ON = "smsc_deliveredon"
MESSAGE_RECEIVED_ON = "smsc_receivedon"

# Alternate keys (name -> columns), as declared in solution_schema/tables/*.yaml.
CONFIGURATION_SENDER_KEY = ("smsc_senderkey",)
RECORD_TYPE_KEY = ("smsc_configurationid", "smsc_tablename")
KEYWORD_KEY = ("smsc_configurationid", "smsc_keyword")
CONSENT_KEY = ("smsc_phone", "smsc_configurationid", "smsc_purpose")
MESSAGE_PROVIDER_ID = "smsc_providermessageid"

# Message columns that mark what the connector made of a message (message.yaml).
MESSAGE_AUTOMATIC = "smsc_isautomatic"  # sent by the connector itself (confirmation, opt-in)
MESSAGE_KEYWORD = "smsc_keyword"  # the keyword an inbound message was read as
MESSAGE_NEEDS_REVIEW = "smsc_needsreview"
MESSAGE_REVIEW_REASON = "smsc_reviewreason"
# More smsc_message columns a row created in Dataverse (a send that starts in Dynamics) is
# read by (with the thread pane's above)
MESSAGE_CATEGORY = "smsc_category"
MESSAGE_TEMPLATE_LOOKUP = "smsc_templateid"


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
CONSENT_STATUS_OPTIONS: Mapping[ConsentStatus, int] = MappingProxyType(
    {
        ConsentStatus.OPTED_IN: 105710000,
        ConsentStatus.OPTED_OUT: 105710001,
        ConsentStatus.PENDING: 105710002,
    }
)
CONSENT_METHOD_OPTIONS: Mapping[ConsentMethod, int] = MappingProxyType(
    {
        ConsentMethod.KEYWORD: 105710000,
        ConsentMethod.API: 105710001,
        ConsentMethod.FORM: 105710002,
        ConsentMethod.IMPORT: 105710003,
        ConsentMethod.ADMINISTRATOR: 105710004,
        ConsentMethod.PROVIDER: 105710005,
    }
)
# Choice columns whose options tables.py maps, for the consistency test: (table, column).
MAPPED_CHOICES: Mapping[tuple[str, str], Mapping[Any, int]] = MappingProxyType(
    {
        ("smsc_configuration", "smsc_provider"): PROVIDER_OPTIONS,
        ("smsc_configuration", "smsc_validationstatus"): VALIDATION_OPTIONS,
        ("smsc_keyword", "smsc_action"): KEYWORD_ACTION_OPTIONS,
        ("smsc_template", "smsc_category"): CATEGORY_OPTIONS,
        ("smsc_consent", "smsc_purpose"): CATEGORY_OPTIONS,
        ("smsc_consent", "smsc_status"): CONSENT_STATUS_OPTIONS,
        ("smsc_consent", "smsc_method"): CONSENT_METHOD_OPTIONS,
        ("smsc_consentchange", "smsc_purpose"): CATEGORY_OPTIONS,
        ("smsc_consentchange", "smsc_status"): CONSENT_STATUS_OPTIONS,
        ("smsc_consentchange", "smsc_method"): CONSENT_METHOD_OPTIONS,
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
        time_zone=_text(row, "smsc_timezone"),
        help_text=_text(row, "smsc_helptext"),
        opt_in_text=_text(row, "smsc_optintext"),
        opt_in_expiry_hours=int(row.get("smsc_optinexpiry") or DEFAULT_OPT_IN_EXPIRY_HOURS),
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
        "smsc_timezone": config.time_zone,
        "smsc_helptext": config.help_text,
        "smsc_optintext": config.opt_in_text,
        "smsc_optinexpiry": config.opt_in_expiry_hours,
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


# -- consent: the current row per (phone, configuration, purpose) and its change history -----

CONSENT_COLUMNS = (
    CONSENT.id_column,
    "smsc_phone",
    CONSENT.value(CONFIGURATION_LOOKUP),
    "smsc_purpose",
    "smsc_status",
    "smsc_method",
    "smsc_evidencemessageid",
    "smsc_evidencetext",
    "smsc_evidenceon",
    "smsc_evidencesource",
    "smsc_pendingexpireson",
    "modifiedon",
    "versionnumber",
)
"""The columns :func:`consent_from_row` reads (a ``$select``)."""
CONSENT_MODIFIED = "modifiedon"

_STATUS_LABELS = {
    ConsentStatus.OPTED_IN: "Opted in",
    ConsentStatus.OPTED_OUT: "Opted out",
    ConsentStatus.PENDING: "Pending",
}
_METHOD_LABELS = {
    ConsentMethod.KEYWORD: "keyword",
    ConsentMethod.API: "API",
    ConsentMethod.FORM: "form",
    ConsentMethod.IMPORT: "import",
    ConsentMethod.ADMINISTRATOR: "administrator",
    ConsentMethod.PROVIDER: "provider",
}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _phone_key(phone: str) -> str:
    return phone.removeprefix("+")


def consent_key(phone: str, configuration_id: str, purpose: MessageCategory) -> dict[str, Any]:
    """The alternate key of the ``smsc_consent`` row of (phone, configuration, purpose).

    In a URL a key part that is a lookup is named by its lookup property
    (``_smsc_configurationid_value=<guid>``), as Dataverse documents; the phone is E.164
    without ``+`` (key addressing refuses ``+``), the purpose its option value.
    :class:`~connector.errors.InvalidInputError` for a phone that is not E.164 or a
    configuration id that is not a GUID.
    """
    try:
        configuration = uuid.UUID(configuration_id)
    except ValueError:
        raise InvalidInputError(
            f"not a configuration id: {configuration_id[:80]!r}",
            details={"configuration": configuration_id[:80]},
        ) from None
    return {
        "smsc_phone": to_key_value(phone),
        CONSENT.value(CONFIGURATION_LOOKUP): configuration,
        "smsc_purpose": CATEGORY_OPTIONS[purpose],
    }


def _consent_state(change: ConsentChange) -> dict[str, Any]:
    """Status, method, evidence and pending expiry: the same on both consent tables."""
    evidence = change.evidence
    return {
        "smsc_status": CONSENT_STATUS_OPTIONS[change.status],
        "smsc_method": CONSENT_METHOD_OPTIONS[change.method],
        "smsc_evidencemessageid": evidence.message_id[:100] if evidence.message_id else None,
        "smsc_evidencetext": evidence.text[:2000] if evidence.text else None,
        "smsc_evidenceon": _iso(evidence.at),
        "smsc_evidencesource": evidence.source[:200] or None,
        "smsc_pendingexpireson": _iso(change.expires_at) if change.expires_at else None,
        f"{CONFIGURATION_NAV}@odata.bind": _bind(CONFIGURATION.entity_set, change.configuration_id),
    }


def consent_to_row(change: ConsentChange) -> dict[str, Any]:
    """The upsert body of the current ``smsc_consent`` row after ``change`` (addressed by
    :func:`consent_key`; phone and purpose come from the key, every other column is
    rewritten so the row is the change's whole state)."""
    row = {"smsc_name": f"{change.phone} ({change.purpose.value})"[:100]}
    row.update(_consent_state(change))
    return row


def consent_change_name(change: ConsentChange) -> str:
    """The history row's name: ``STOP from +14155550123 (commercial)`` for a keyword, else
    ``Opted in by API: +14155550123 (commercial)``."""
    text = (change.evidence.text or "").strip().split("\n", 1)[0][:40]
    if change.method is ConsentMethod.KEYWORD and text:
        name = f"{text} from {change.phone} ({change.purpose.value})"
    else:
        status, method = _STATUS_LABELS[change.status], _METHOD_LABELS[change.method]
        name = f"{status} by {method}: {change.phone} ({change.purpose.value})"
    return name[:200]


def consent_change_to_row(change: ConsentChange, consent_ref: str) -> dict[str, Any]:
    """The upsert body of the ``smsc_consentchange`` row of ``change`` (addressed by its id),
    linked to the current row named by ``consent_ref`` (a bind value)."""
    row: dict[str, Any] = {
        "smsc_name": consent_change_name(change),
        "smsc_phone": to_key_value(change.phone),
        "smsc_purpose": CATEGORY_OPTIONS[change.purpose],
        f"{CONSENT_NAV}@odata.bind": consent_ref,
    }
    row.update(_consent_state(change))
    return row


def _epoch(value: Any) -> float | None:
    moment = _when(value)
    return moment.timestamp() if moment is not None else None


def consent_from_row(row: Mapping[str, Any]) -> ConsentChange:
    """The current state of an ``smsc_consent`` row as a :class:`ConsentChange`.

    Its id is derived from the row id, ``modifiedon`` and ``versionnumber`` (the row version:
    two edits within one second still differ), so each edit of the row reads as a change of
    its own and reading the same edit twice gives the same id. A row without a
    method is an administrator's; without evidence time, the edit time is the evidence time.
    :class:`~connector.errors.ConfigurationError` for a row without phone, configuration or
    status, or with an option value the mapping does not know.
    """
    row_id = _text(row, CONSENT.id_column) or ""
    phone = _phone_key(_text(row, "smsc_phone") or "")
    configuration_id = _text(row, CONSENT.value(CONFIGURATION_LOOKUP))
    if not phone or not configuration_id:
        raise ConfigurationError(
            "a consent row has no phone or no configuration",
            details={"id": row_id, "phone": phone, "configuration": configuration_id},
        )
    if row.get("smsc_status") is None:
        raise ConfigurationError("a consent row has no status", details={"id": row_id})
    purpose = _choice(CATEGORY_OPTIONS, row.get("smsc_purpose"), "smsc_purpose")
    status = _choice(CONSENT_STATUS_OPTIONS, row.get("smsc_status"), "smsc_status")
    method_value = row.get("smsc_method")
    method = (
        ConsentMethod.ADMINISTRATOR
        if method_value is None
        else _choice(CONSENT_METHOD_OPTIONS, method_value, "smsc_method")
    )
    modified = _text(row, CONSENT_MODIFIED) or ""
    edit = f"{row_id}|{modified}|{_text(row, 'versionnumber') or ''}"
    at = _epoch(row.get("smsc_evidenceon")) or _epoch(modified) or 0.0
    e164 = f"+{phone}"
    return ConsentChange(
        id=change_id(f"dataverse|{edit}", e164, configuration_id, purpose),
        phone=e164,
        configuration_id=configuration_id,
        purpose=purpose,
        status=status,
        method=method,
        evidence=Evidence(
            at=at,
            source=_text(row, "smsc_evidencesource") or "dataverse",
            message_id=_text(row, "smsc_evidencemessageid"),
            text=_text(row, "smsc_evidencetext"),
        ),
        expires_at=_epoch(row.get("smsc_pendingexpireson")),
    )
