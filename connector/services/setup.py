"""The ``connector setup`` use case: one sender's configuration with its defaults, idempotently.

Given a sender number and provider credentials, :func:`run_setup` creates the configuration
row (or updates the one with that sender number), encrypts the auth token, writes the callback
URL the provider must call, and adds what is missing of the default record types (contact 1,
account 2, opportunity 3 through its parent contact or account, lead 4) and the default
keywords (STOP, START and HELP families). Rows an admin already has are left as the admin made
them, so running setup again changes nothing but the configuration's own fields. Given the
provider's credential check, it also validates the credentials and stores the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType

from connector.domain.keywords import HELP_WORDS, START_WORDS, STOP_WORDS
from connector.domain.model import (
    Configuration,
    Keyword,
    KeywordAction,
    Provider,
    RecordType,
    ValidationStatus,
)
from connector.domain.phone import normalize
from connector.domain.provider_messages import CredentialReport
from connector.errors import InvalidInputError
from connector.ports import ConfigurationStore, SecretCipher

CALLBACK_PATH = {Provider.TWILIO: "/webhooks/twilio/messages"}

CredentialCheck = Callable[[str, str], CredentialReport]
"""``(account id, plain secret) -> report``: the provider's own credential check."""


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """What the admin asked for on the command line."""

    sender: str
    provider: Provider = Provider.TWILIO
    account_sid: str | None = None
    auth_token: str | None = field(default=None, repr=False)
    default_country: str | None = None
    name: str | None = None
    public_base_url: str | None = None


@dataclass(frozen=True, slots=True)
class SetupResult:
    """The configuration as stored, its record types and keywords, and what was added now."""

    configuration: Configuration
    created: bool
    record_types: tuple[RecordType, ...]
    keywords: tuple[Keyword, ...]
    added_record_types: tuple[str, ...] = ()
    added_keywords: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    validation: CredentialReport | None = None


def default_record_types(configuration_id: str, country: str | None) -> list[RecordType]:
    """Contact 1, account 2, opportunity 3 (through its parents), lead 4."""
    phones = {
        "contact": ("mobilephone", "telephone1", "telephone2"),
        "account": ("telephone1", "telephone2"),
        "lead": ("mobilephone", "telephone1"),
    }
    parents = MappingProxyType({"parentcontactid": "contact", "parentaccountid": "account"})
    return [
        RecordType(
            table=table,
            configuration_id=configuration_id,
            phone_columns=phones.get(table, ()),
            default_country=country,
            priority=priority,
            parent_lookups=parents if table == "opportunity" else MappingProxyType({}),
        )
        for priority, table in enumerate(("contact", "account", "opportunity", "lead"), start=1)
    ]


def default_keywords(configuration_id: str, sender_name: str) -> list[Keyword]:
    """The STOP, START and HELP families with their replies."""
    stop = (
        f"{sender_name}: you are unsubscribed and will receive no more messages. "
        "Reply START to resubscribe."
    )
    start = f"{sender_name}: you are subscribed again. Reply STOP to unsubscribe."
    help_text = f"{sender_name}: reply STOP to unsubscribe. Msg & data rates may apply."
    families = (
        (STOP_WORDS, KeywordAction.OPT_OUT, stop),
        (START_WORDS, KeywordAction.OPT_IN, start),
        (HELP_WORDS, KeywordAction.HELP, help_text),
    )
    return [
        Keyword(word, action, reply, configuration_id=configuration_id)
        for words, action, reply in families
        for word in words
    ]


def callback_url(base: str | None, provider: Provider) -> str | None:
    """Where the provider posts inbound messages: ``<public base url>/webhooks/<provider>/...``."""
    path = CALLBACK_PATH.get(provider)
    if not base or path is None:
        return None
    return base.rstrip("/") + path


_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_NAME = 100


def _checked(request: SetupRequest) -> SetupRequest:
    """The request with its country upper-cased; bad values refused, naming the option."""
    country = request.default_country.strip().upper() if request.default_country else None
    if country is not None and not _COUNTRY.match(country):
        raise InvalidInputError(f"--default-country {country[:10]!r} is not an ISO region code")
    sid = request.account_sid
    if request.provider is Provider.TWILIO and sid and not _ACCOUNT_SID.match(sid):
        raise InvalidInputError("--account-sid must be AC followed by 32 hexadecimal digits")
    if request.name is not None and not 0 < len(request.name) <= MAX_NAME:
        raise InvalidInputError(f"--name must be 1 to {MAX_NAME} characters")
    if request.auth_token is not None and not 0 < len(request.auth_token) <= 512:
        raise InvalidInputError("--auth-token must be 1 to 512 characters")
    return replace(request, default_country=country)


def _sender(raw: str, country: str | None) -> str:
    try:
        return normalize(raw, (country,))
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"--sender {raw!r} is not a valid phone number ({exc.message})",
            details={"sender": raw},
        ) from exc


def _configuration(
    request: SetupRequest, existing: Configuration | None, cipher: SecretCipher, sender: str
) -> Configuration:
    base = existing or Configuration(
        name=request.name or sender, provider=request.provider, sender_number=sender
    )
    secret = cipher.encrypt(request.auth_token) if request.auth_token else base.secret
    return replace(
        base,
        name=request.name or base.name,
        provider=request.provider,
        sender_number=sender,
        account_id=request.account_sid or base.account_id,
        secret=secret,
        callback_url=callback_url(request.public_base_url, request.provider) or base.callback_url,
        default_country=request.default_country or base.default_country,
    )


def _validated(
    config: Configuration, cipher: SecretCipher, check: CredentialCheck, now: datetime
) -> tuple[Configuration, CredentialReport | None]:
    """``config`` with the outcome of the provider's credential check (when it can be run)."""
    if not config.account_id or not config.secret:
        return config, None
    report = check(config.account_id, cipher.reveal(config.secret)[0])
    message = report.problem or "; ".join(report.warnings) or None
    status = ValidationStatus.VALID if report.ok else ValidationStatus.INVALID
    checked = replace(
        config, validation_status=status, validation_message=message, last_validated_on=now
    )
    return checked, report


def run_setup(
    request: SetupRequest,
    store: ConfigurationStore,
    cipher: SecretCipher,
    check: CredentialCheck | None = None,
    now: datetime | None = None,
) -> SetupResult:
    """Create or update the sender's configuration and add its missing defaults.

    With ``check`` the provider credentials are tried first and the outcome stored on the
    configuration (validation status, message, time); the row is written either way.
    """
    request = _checked(request)
    country = request.default_country
    sender = _sender(request.sender, country)
    existing = store.find_configuration(sender)
    wanted = _configuration(request, existing, cipher, sender)
    report = None
    if check is not None:
        wanted, report = _validated(wanted, cipher, check, now or datetime.now(UTC))
    config = store.save_configuration(wanted)
    if config.id is None:
        raise InvalidInputError("the configuration store returned no id")
    types = _add_record_types(store, config.id, country)
    words = _add_keywords(store, config.id, config.name)
    return SetupResult(
        configuration=config,
        created=existing is None,
        record_types=tuple(store.record_types(config.id)),
        keywords=tuple(store.keywords(config.id)),
        added_record_types=types,
        added_keywords=words,
        warnings=_warnings(config, report),
        validation=report,
    )


def _warnings(config: Configuration, report: CredentialReport | None) -> tuple[str, ...]:
    warnings = []
    if config.callback_url is None:
        warnings.append("no CONNECTOR_PUBLIC_BASE_URL: callback URL not set")
    if config.secret is None and config.provider is Provider.TWILIO:
        warnings.append("no auth token stored: pass --auth-token")
    if report is not None and not report.ok:
        warnings.append(f"credentials not valid: {report.problem}")
    return tuple(warnings)


def _add_record_types(
    store: ConfigurationStore, configuration_id: str, country: str | None
) -> tuple[str, ...]:
    have = {rt.table: rt for rt in store.record_types(configuration_id)}
    added: list[str] = []
    for default in default_record_types(configuration_id, country):
        if default.table in have:
            continue
        parent = have.get("contact") if default.related else None
        wanted = replace(default, related_record_type_id=parent.id if parent else None)
        have[default.table] = store.save_record_type(wanted)
        added.append(default.table)
    return tuple(added)


def _add_keywords(
    store: ConfigurationStore, configuration_id: str, sender_name: str
) -> tuple[str, ...]:
    have = {kw.normalized for kw in store.keywords(configuration_id)}
    missing: Sequence[Keyword] = [
        kw for kw in default_keywords(configuration_id, sender_name) if kw.normalized not in have
    ]
    return tuple(store.save_keyword(kw).normalized for kw in missing)


def provider_secret(
    config: Configuration, cipher: SecretCipher, store: ConfigurationStore
) -> str | None:
    """The configuration's provider secret in plain text, for the provider client only.

    A value an admin typed in plain text (or one under a retired key) is re-encrypted and
    written back now, so it is stored in plain text no longer than until its first read.
    """
    if not config.secret:
        return None
    plain, rewrite = cipher.reveal(config.secret)
    if rewrite is not None and config.id:
        store.save_secret(config.id, rewrite)
    return plain
