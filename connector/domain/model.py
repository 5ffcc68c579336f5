"""The connector's configuration objects as the rest of the code sees them (pure dataclasses).

Admins keep these as Dataverse rows (``smsc_configuration``, ``smsc_recordtype``,
``smsc_keyword``, ``smsc_template``); :mod:`connector.crm.tables` is the one place that
turns rows into these objects and back. Nothing here knows a logical name or does I/O.

Choice-like fields are :class:`enum.Enum` members whose values are stable strings; the
Dataverse option values behind them live with the table mapping.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


class Provider(enum.StrEnum):
    """Which SMS provider a sender number uses."""

    TWILIO = "twilio"
    ACS = "acs"
    SIMULATOR = "simulator"


class ValidationStatus(enum.StrEnum):
    """Whether a configuration was checked against the provider and Dataverse."""

    DRAFT = "draft"
    VALID = "valid"
    INVALID = "invalid"


class KeywordAction(enum.StrEnum):
    """What an inbound keyword does."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    CONFIRM = "confirm"
    AUTO_REPLY = "auto_reply"


class MessageCategory(enum.StrEnum):
    """Transactional messages need "not opted out"; commercial ones need "opted in"."""

    TRANSACTIONAL = "transactional"
    COMMERCIAL = "commercial"


DEFAULT_SESSION_TIMEOUT_MINUTES = 1440
DEFAULT_IDLE_TIMEOUT_MINUTES = 5
DEFAULT_OPT_IN_EXPIRY_HOURS = 72


@dataclass(frozen=True, slots=True)
class Configuration:
    """One sender: its provider, number, credentials and conversation timing.

    ``secret`` is the provider secret exactly as stored in Dataverse: a Fernet token written
    by the connector, or a plain value an admin typed (re-encrypted on first read, see
    :mod:`connector.secret_box`). Never log it.
    """

    name: str
    provider: Provider
    sender_number: str
    id: str | None = None
    messaging_service_id: str | None = None
    account_id: str | None = None
    secret: str | None = field(default=None, repr=False)
    callback_url: str | None = None
    allow_create_to: tuple[str, ...] = ("lead",)
    session_timeout_minutes: int = DEFAULT_SESSION_TIMEOUT_MINUTES
    idle_timeout_minutes: int = DEFAULT_IDLE_TIMEOUT_MINUTES
    owning_team_id: str | None = None
    owner_id: str | None = None
    default_country: str | None = None
    quiet_hours: str | None = None
    time_zone: str | None = None
    help_text: str | None = None
    opt_in_text: str | None = None
    opt_in_expiry_hours: int = DEFAULT_OPT_IN_EXPIRY_HOURS
    rate_per_second: float | None = None
    last_validated_on: datetime | None = None
    validation_status: ValidationStatus = ValidationStatus.DRAFT
    validation_message: str | None = None
    active: bool = True

    @property
    def sender_key(self) -> str:
        """The sender number as used in alternate keys: E.164 without the leading ``+``."""
        return self.sender_number.removeprefix("+")


@dataclass(frozen=True, slots=True)
class RecordType:
    """Which CRM table a configuration resolves numbers against, and how.

    ``phone_columns`` are read in order. A related record type (opportunity) has no phone
    columns of its own: ``parent_lookups`` maps its lookup columns (``parentcontactid``) to
    the parent table (``contact``) whose numbers it takes. ``priority`` orders tables when a
    number matches several (lower first). ``compliance_column`` names a boolean column that
    must be true before sending (unset: no check).
    """

    table: str
    configuration_id: str | None = None
    id: str | None = None
    phone_columns: tuple[str, ...] = ()
    compliance_column: str | None = None
    default_country: str | None = None
    priority: int = 100
    related_record_type_id: str | None = None
    parent_lookups: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    active: bool = True

    @property
    def related(self) -> bool:
        """Found through parent records rather than its own phone columns."""
        return bool(self.parent_lookups) and not self.phone_columns


@dataclass(frozen=True, slots=True)
class Keyword:
    """An inbound keyword (matched on the whole body, case-insensitive) and its action."""

    keyword: str
    action: KeywordAction
    reply_text: str | None = None
    configuration_id: str | None = None
    id: str | None = None
    active: bool = True

    @property
    def normalized(self) -> str:
        """The keyword as matched: stripped and upper-case."""
        return self.keyword.strip().upper()


@dataclass(frozen=True, slots=True)
class Template:
    """A message template: ``{column}``, ``{lookup.column}`` and ``{column|default}``."""

    title: str
    body: str
    id: str | None = None
    scope: str | None = None
    category: MessageCategory = MessageCategory.TRANSACTIONAL
    language: str | None = None
    published: bool = False
