"""What every implementation of a port must do, run against the shipped fakes and the real adapters.

Each ``*_contract`` function drives one implementation through the port's methods and then
reads the result back as state: through the port itself where it can say, otherwise through
a small probe each side implements (the fake's dictionaries, or the rows in the emulator).
Nothing is mocked. The unit tier runs them against the fakes in :mod:`connector.testing` (and
in-memory real adapters); the integration tier runs the same functions against the Dataverse
and Twilio adapters over loopback (``tests/integration/test_adapters_conform.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from connector.domain.consent import (
    ConsentChange,
    ConsentMethod,
    ConsentStatus,
    Evidence,
    change_id,
)
from connector.domain.conversation import InboundWrite, ReceivedMessage, SessionState
from connector.domain.model import (
    Configuration,
    Keyword,
    KeywordAction,
    MessageCategory,
    Provider,
    RecordType,
    Template,
)
from connector.domain.provider_messages import InboundMedia, SendRequest
from connector.domain.record_types import standard_spec
from connector.domain.routing import NO_MATCH, MatchTrace, RecordRef, SenderContext
from connector.domain.status import MessageStatus
from connector.errors import DataverseError, InvalidInputError, ProviderError, SignatureError
from connector.ports import (
    ConfigurationDirectory,
    ConfigurationStore,
    ConsentLedgerWriter,
    ConversationRelinker,
    ConversationWriter,
    ErrorLog,
    MediaFetcher,
    PhoneDirectory,
    RecordReader,
    RecordResolver,
    SmsProvider,
    TemplateCatalog,
)
from connector.testing.signing import inbound_fields, signed_form

SENDER = "+14155550100"
CUSTOMER = "+14155550123"
MAGIC_FROM = "+15005550006"  # Twilio's test number that always sends
MAGIC_INVALID_TO = "+15005550001"  # ... and the one that is refused with 21211


# -- SmsProvider ----------------------------------------------------------------------------


def sms_provider_contract(provider: SmsProvider, account_sid: str, auth_token: str) -> None:
    """Sends, refusals, webhook parsing and signature checks."""
    sent = provider.send(SendRequest("m-1", to=CUSTOMER, body="Hello", from_number=MAGIC_FROM))
    assert sent.provider_message_id.startswith("SM")
    assert (sent.status, sent.num_segments, sent.num_media) == (MessageStatus.QUEUED, 1, 0)
    with pytest.raises(ProviderError) as refused:
        provider.send(SendRequest("m-2", to=MAGIC_INVALID_TO, body="x", from_number=MAGIC_FROM))
    assert refused.value.provider_code == 21211
    assert not refused.value.transient

    url = "https://sms.example.com/webhooks/twilio/messages"
    fields = inbound_fields(CUSTOMER, SENDER, "Hi 👋", account_sid=account_sid)
    signed = signed_form(url, fields, auth_token)
    provider.verify_signature(url, fields, signed.headers)
    with pytest.raises(SignatureError):
        provider.verify_signature(url, [*fields[:-1], (fields[-1][0], "x")], signed.headers)
    with pytest.raises(SignatureError):
        provider.verify_signature(url, fields, {})
    message = provider.parse_inbound(fields)
    assert (message.from_number, message.to_number, message.body) == (CUSTOMER, SENDER, "Hi 👋")
    assert message.account_id == account_sid

    report = provider.validate_credentials()
    assert report.ok and report.account_id == account_sid


# -- PhoneDirectory -------------------------------------------------------------------------


class ContactRows(Protocol):
    """How a test puts contacts where the directory reads them."""

    def add(self, mobilephone: str) -> str:
        """Create a contact with this mobile phone; its id."""
        ...

    def remove(self, contact_id: str) -> None:
        """Delete a contact."""
        ...


def phone_directory_contract(directory: PhoneDirectory, contacts: ContactRows) -> None:
    """Full and delta reads, exact phone matches, lead creation."""
    spec = standard_spec("contact", ("mobilephone",), change_tracking=True)
    first, second = contacts.add("+14155550101"), contacts.add("+14155550102")

    read = [row["contactid"] for page in directory.read_records(spec) for row in page.rows]
    assert sorted(read) == sorted([first, second])

    found = directory.find_by_phone([spec], ["+14155550101"])
    assert [row["contactid"] for row in found["contact"]] == [first]
    assert directory.find_by_phone([spec], ["4155550101"]) == {"contact": []}  # exact only

    pages = list(directory.read_changes(spec, None))
    assert sorted(r["contactid"] for p in pages for r in p.rows) == sorted([first, second])
    link = pages[-1].delta_link
    assert link
    contacts.remove(second)
    third = contacts.add("+14155550103")
    changes = list(directory.read_changes(spec, link))
    assert [r["contactid"] for p in changes for r in p.rows] == [third]
    assert [i for p in changes for i in p.deleted_ids] == [second]
    assert changes[-1].delta_link and changes[-1].delta_link != link

    lead = directory.create_lead("+14155550199", None)
    leads = directory.find_by_phone([standard_spec("lead", ("mobilephone",))], ["+14155550199"])
    assert [row["leadid"] for row in leads["lead"]] == [lead]


# -- ConfigurationStore ---------------------------------------------------------------------


def configuration_store_contract(store: ConfigurationStore) -> None:
    """Upserts by the alternate keys Dataverse has: saving twice leaves one row."""
    first = store.save_configuration(Configuration("Main", Provider.TWILIO, SENDER))
    again = store.save_configuration(Configuration("Main line", Provider.TWILIO, SENDER))
    assert first.id and again.id == first.id
    found = store.find_configuration(SENDER)
    assert found is not None and (found.id, found.name) == (first.id, "Main line")
    assert store.find_configuration(SENDER.removeprefix("+")) == found
    assert store.find_configuration("+14155550199") is None

    config_id = first.id
    lead = RecordType("lead", config_id, phone_columns=("mobilephone",), priority=4)
    contact = RecordType("contact", config_id, phone_columns=("mobilephone",), priority=1)
    saved = [store.save_record_type(rt) for rt in (lead, contact, lead)]
    assert saved[0].id and saved[2].id == saved[0].id
    assert [(t.table, t.priority) for t in store.record_types(config_id)] == [
        ("contact", 1),
        ("lead", 4),
    ]

    stop = store.save_keyword(Keyword(" stop", KeywordAction.OPT_OUT, configuration_id=config_id))
    again_stop = store.save_keyword(Keyword("STOP", KeywordAction.OPT_OUT, "Bye", config_id))
    assert stop.keyword == "STOP" and again_stop.id == stop.id
    (kept,) = store.keywords(config_id)
    assert (kept.keyword, kept.reply_text) == ("STOP", "Bye")

    store.save_secret(config_id, "stored-secret")
    with_secret = store.find_configuration(SENDER)
    assert with_secret is not None and with_secret.secret == "stored-secret"
    assert with_secret.name == "Main line"  # nothing else written


# -- ConfigurationDirectory -----------------------------------------------------------------


class ConfigurationRows(Protocol):
    """How a test puts configurations and blocked numbers where the directory reads them."""

    def add(self, config: Configuration) -> str:
        """Create the configuration; its id."""
        ...

    def block(self, configuration_id: str, phone: str) -> None:
        """Block a number for a configuration."""
        ...


def configuration_directory_contract(
    directory: ConfigurationDirectory, rows: ConfigurationRows
) -> None:
    """Only active configurations; blocked numbers per configuration."""
    active = rows.add(Configuration("On", Provider.TWILIO, SENDER))
    rows.add(Configuration("Off", Provider.TWILIO, "+14155550111", active=False))
    assert [(c.id, c.name) for c in directory.active_configurations()] == [(active, "On")]
    assert directory.blocked_numbers() == {}
    rows.block(active, CUSTOMER)
    assert directory.blocked_numbers() == {active: frozenset({CUSTOMER})}


# -- ConversationWriter ---------------------------------------------------------------------


class WrittenMessages(Protocol):
    """What a writer has stored, read back."""

    def bodies(self) -> dict[str, str]:
        """Provider message id -> body of every stored message."""
        ...


def inbound_write(
    configuration_id: str, regarding: RecordRef, provider_id: str, body: str, at: float
) -> InboundWrite:
    """One inbound message in a session of ``configuration_id`` about ``regarding``."""
    session = SessionState(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"session:{configuration_id}:{CUSTOMER}")),
        configuration_id=configuration_id,
        phone=CUSTOMER,
        started_at=at,
        expires_at=at + 3600,
        regarding_table=regarding.table,
        regarding_id=regarding.id,
    )
    message = ReceivedMessage(provider_id, "AC" + "0" * 32, CUSTOMER, SENDER, body, at)
    return InboundWrite(session, message, regarding.table, regarding.id)


def conversation_writer_contract(
    writer: ConversationWriter, stored: WrittenMessages, configuration_id: str, customer: RecordRef
) -> None:
    """One message per provider id however often it is written; a batch reports per write."""
    now = 1_767_000_000.0
    first = inbound_write(configuration_id, customer, "SM" + "1" * 32, "first", now)
    writer.write_inbound(first)
    writer.write_inbound(first)  # a retry after a lost answer
    assert stored.bodies() == {"SM" + "1" * 32: "first"}
    batch = [
        inbound_write(configuration_id, customer, "SM" + "2" * 32, "second", now + 1),
        inbound_write(configuration_id, customer, "SM" + "3" * 32, "third", now + 2),
    ]
    assert writer.write_inbound_many(batch) == [None, None]
    assert sorted(stored.bodies().values()) == ["first", "second", "third"]


# -- ConversationRelinker -------------------------------------------------------------------


class SessionMessages(Protocol):
    """How a test gives a session messages, and reads back what they regard."""

    def add(self, session_id: str, regarding: RecordRef, count: int) -> None:
        """``count`` messages in the session, regarding ``regarding``."""
        ...

    def regarding(self, session_id: str) -> list[RecordRef | None]:
        """What each message of the session regards now."""
        ...


def conversation_relinker_contract(
    relinker: ConversationRelinker,
    messages: SessionMessages,
    *,
    source: RecordRef,
    target: RecordRef,
    ghost: RecordRef,
    session_id: str,
) -> None:
    """Every message of the session moves, again without harm; a missing target moves none."""
    messages.add(session_id, source, 2)
    trace = MatchTrace(CUSTOMER, NO_MATCH, target, source="live")
    assert relinker.relink(session_id, target, trace) == 2
    assert messages.regarding(session_id) == [target, target]
    assert relinker.relink(session_id, target, trace) == 2  # again: same state
    assert messages.regarding(session_id) == [target, target]
    with pytest.raises(DataverseError):
        relinker.relink(session_id, ghost, trace)
    assert messages.regarding(session_id) == [target, target]  # nothing half-moved


# -- ErrorLog -------------------------------------------------------------------------------


class ErrorRows(Protocol):
    """What an error log has stored, read back."""

    def rows(self) -> list[tuple[str, str]]:
        """(code, message) of every stored row, sorted."""
        ...


def error_log_contract(log: ErrorLog, stored: ErrorRows) -> None:
    """One row per key: writing a key again replaces its row."""
    log.record("k1", "E1", "first", {"attempt": 1})
    log.record("k1", "E2", "second", {"attempt": 2})
    log.record("k2", "E3", "third", {})
    assert stored.rows() == [("E2", "second"), ("E3", "third")]


# -- MediaFetcher ---------------------------------------------------------------------------


def media_fetcher_contract(
    fetcher: MediaFetcher, hosted_url: str, data: bytes, account_id: str
) -> None:
    """A hosted item arrives whole with its type and a safe name; a foreign URL is refused."""
    media = fetcher.fetch(InboundMedia(hosted_url, "image/png"), account_id)
    assert (media.content_type, media.data) == ("image/png", data)
    assert media.filename == hosted_url.rsplit("/", 1)[1] + ".png"
    with pytest.raises(InvalidInputError):
        fetcher.fetch(InboundMedia("https://evil.example.com/x.png", "image/png"), account_id)


# -- RecordResolver -------------------------------------------------------------------------


def record_resolver_contract(resolver: RecordResolver, known: str, record: RecordRef) -> None:
    """A known number resolves to its record; an unknown one gets exactly one new lead, the
    same for every message until the write that creates it was confirmed."""
    sender = SenderContext("cfg", default_country="US")
    found = resolver.resolve(known, sender)
    assert (found.record, found.created, found.create_lead) == (record, False, False)
    assert found.trace.chosen == record
    unknown = "+14155550177"
    created = resolver.resolve(unknown, sender)
    assert created.created and created.record is not None and created.record.table == "lead"
    assert resolver.new_lead(known, sender, record) is None
    new = resolver.new_lead(unknown, sender, created.record)
    if new is not None:  # created by the message's own write
        assert (new.lead_id, new.phone) == (created.record.id, unknown)
        assert resolver.resolve(unknown, sender).record == created.record
        resolver.lead_written(new)
        assert resolver.new_lead(unknown, sender, created.record) is None
    again = resolver.resolve(unknown, sender)
    assert (again.record, again.created) == (created.record, False)


# -- TemplateCatalog ------------------------------------------------------------------------


class TemplateRows(Protocol):
    """How a test puts templates where the catalog reads them."""

    def add(self, template: Template) -> str:
        """Create the template; its id."""
        ...


def template_catalog_contract(catalog: TemplateCatalog, rows: TemplateRows) -> None:
    """A template created after the first read is found by id; only published ones listed."""
    assert catalog.published() == []
    shown = rows.add(Template("Welcome", "Hi {firstname}", published=True))
    draft = rows.add(Template("Draft", "Later {firstname|there}"))
    found = catalog.get(draft)
    assert found is not None and (found.id, found.title, found.published) == (draft, "Draft", False)
    assert [(t.id, t.body) for t in catalog.published()] == [(shown, "Hi {firstname}")]
    assert catalog.get(str(uuid.uuid4())) is None


# -- RecordReader ---------------------------------------------------------------------------


class CustomerRows(Protocol):
    """How a test puts contacts (with a parent account) where the reader reads them."""

    def add(self, firstname: str | None, company: str | None) -> str:
        """A contact with this first name whose parent customer is an account named
        ``company`` with account number ``A-1`` (no parent when None); its id."""
        ...


def record_reader_contract(reader: RecordReader, rows: CustomerRows) -> None:
    """Plain columns and lookups one level deep; an empty lookup reads None; errors."""
    with_company, alone = rows.add("Ana", "Contoso"), rows.add(None, None)
    fields = ["FirstName", "parentcustomerid.name", "parentcustomerid.accountnumber"]
    record = reader.read("contact", with_company, fields)
    assert record is not None and (record.table, record.id) == ("contact", with_company)
    assert dict(record.values) == {
        "firstname": "Ana",
        "parentcustomerid.name": "Contoso",
        "parentcustomerid.accountnumber": "A-1",
    }
    empty = reader.read("contact", alone, fields)
    assert empty is not None and dict(empty.values) == dict.fromkeys(
        ["firstname", "parentcustomerid.name", "parentcustomerid.accountnumber"]
    )
    assert reader.read("contact", str(uuid.uuid4()), fields) is None
    with pytest.raises(InvalidInputError) as raised:
        reader.read("contact", with_company, ["firstname", "nosuchcolumn"])
    assert raised.value.code == "unknown_column"
    assert raised.value.details == {"table": "contact", "field": "nosuchcolumn"}


# -- ConsentLedgerWriter --------------------------------------------------------------------


class ConsentRows(Protocol):
    """The ledger's rows as stored, and an administrator's edit of a current row."""

    def current(
        self, phone: str, configuration_id: str, purpose: MessageCategory
    ) -> tuple[ConsentStatus, ConsentMethod, str | None] | None:
        """Status, method and evidence message id of the current row (None: no row)."""
        ...

    def history(self) -> dict[str, ConsentStatus]:
        """Change id -> status of every history row."""
        ...

    def edit(
        self, phone: str, configuration_id: str, purpose: MessageCategory, status: ConsentStatus
    ) -> None:
        """Set the status of the current row as an administrator does on the form."""
        ...


def consent_change(
    cause: str,
    configuration_id: str,
    purpose: MessageCategory,
    status: ConsentStatus,
    method: ConsentMethod,
    *,
    at: float,
    text: str | None = None,
    message_id: str | None = None,
    expires_at: float | None = None,
) -> ConsentChange:
    """A change of CUSTOMER's consent to ``configuration_id`` for ``purpose``."""
    return ConsentChange(
        id=change_id(cause, CUSTOMER, configuration_id, purpose),
        phone=CUSTOMER,
        configuration_id=configuration_id,
        purpose=purpose,
        status=status,
        method=method,
        evidence=Evidence(at=at, source=f"test:{cause}", message_id=message_id, text=text),
        expires_at=expires_at,
    )


def consent_ledger_contract(
    ledger: ConsentLedgerWriter, rows: ConsentRows, configuration_id: str
) -> None:
    """The last change is the current row, every change one history row however often it is
    written, a bad change fails alone; current rows read back, admin edits as new changes."""
    commercial, transactional = MessageCategory.COMMERCIAL, MessageCategory.TRANSACTIONAL
    now = 1_767_000_000.0
    stop_sid = "SM" + "5" * 32
    opt_in = consent_change(
        "api-1", configuration_id, commercial, ConsentStatus.OPTED_IN, ConsentMethod.API, at=now
    )
    stops = [
        consent_change(
            stop_sid,
            configuration_id,
            purpose,
            ConsentStatus.OPTED_OUT,
            ConsentMethod.KEYWORD,
            at=now + 60,
            text="STOP",
            message_id=stop_sid,
        )
        for purpose in (commercial, transactional)
    ]
    assert ledger.write([opt_in]) == [None]
    assert rows.current(CUSTOMER, configuration_id, commercial) == (
        ConsentStatus.OPTED_IN,
        ConsentMethod.API,
        None,
    )
    assert ledger.write(stops) == [None, None]
    assert ledger.write([opt_in, *stops]) == [None, None, None]  # a retry of all of them
    stopped = (ConsentStatus.OPTED_OUT, ConsentMethod.KEYWORD, stop_sid)
    assert rows.current(CUSTOMER, configuration_id, commercial) == stopped
    assert rows.current(CUSTOMER, configuration_id, transactional) == stopped
    history = {opt_in.id: ConsentStatus.OPTED_IN} | {c.id: ConsentStatus.OPTED_OUT for c in stops}
    assert rows.history() == history

    pending = consent_change(
        "api-2",
        configuration_id,
        commercial,
        ConsentStatus.PENDING,
        ConsentMethod.API,
        at=now + 120,
        expires_at=now + 120 + 72 * 3600,
    )
    bad = replace(opt_in, id=str(uuid.uuid4()), phone="12")
    errors = ledger.write([bad, pending])
    assert isinstance(errors[0], InvalidInputError) and errors[1] is None
    assert rows.history() == history | {pending.id: ConsentStatus.PENDING}

    read = ledger.changed_since(None)
    assert sorted((c.purpose, c.status) for c in read) == [
        (commercial, ConsentStatus.PENDING),
        (transactional, ConsentStatus.OPTED_OUT),
    ]
    held = next(c for c in read if c.purpose is commercial)
    assert (held.phone, held.configuration_id, held.method) == (
        CUSTOMER,
        configuration_id,
        ConsentMethod.API,
    )
    assert (held.evidence.at, held.expires_at) == (now + 120, now + 120 + 72 * 3600)
    assert held.evidence.source == "test:api-2"
    assert [c.id for c in ledger.changed_since(None)] == [c.id for c in read]  # stable ids
    recent = datetime.now(tz=UTC) - timedelta(minutes=5)
    assert {c.id for c in ledger.changed_since(recent)} == {c.id for c in read}
    assert ledger.changed_since(datetime.now(tz=UTC) + timedelta(days=1)) == []

    rows.edit(CUSTOMER, configuration_id, commercial, ConsentStatus.OPTED_IN)
    edited = next(c for c in ledger.changed_since(None) if c.purpose is commercial)
    assert edited.status is ConsentStatus.OPTED_IN and edited.id != held.id
    assert rows.history() == history | {pending.id: ConsentStatus.PENDING}  # edits add none
