"""The shipped fakes against their ports: typed as the port (mypy checks each assignment) and
driven through the behaviour every implementation must show (``tests/port_contracts.py``).

The same contracts run against the real adapters: here those that work in memory (the record
resolution service over an in-memory state store), the Dataverse and Twilio adapters over
loopback in ``tests/integration/test_adapters_conform.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace

import pytest

from connector.domain.consent import ConsentMethod, ConsentStatus
from connector.domain.model import Configuration, MessageCategory, Template
from connector.domain.phone import lookup_key, search_variants
from connector.domain.record_types import default_specs
from connector.domain.routing import RecordRef
from connector.errors import is_transient
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
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.services.phone_sync import PhoneSync
from connector.services.resolution import RecordResolutionService
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
from connector.testing.configuration_store import InMemoryConfigurationStore
from connector.testing.consent_ledger import FakeConsentLedger
from connector.testing.conversations import (
    FakeConfigurationDirectory,
    FakeConversationWriter,
    FakeErrorLog,
    FakeMediaFetcher,
    TableResolver,
)
from connector.testing.fake_sms import FakeSmsProvider
from connector.testing.phone_directory import FakePhoneDirectory
from connector.testing.session_links import FakeConversationRelinker
from connector.testing.templates import FakeRecordReader, FakeTemplateCatalog
from tests import port_contracts as contract

CONTACT = RecordRef("contact", "00000000-0000-0000-0000-0000000000c1")
OTHER = RecordRef("contact", "00000000-0000-0000-0000-0000000000c2")


def test_each_fake_is_typed_as_its_port() -> None:
    """Static: mypy rejects an assignment whose fake drifted from its port."""
    ports: list[object] = []
    sms: SmsProvider = FakeSmsProvider()
    phones: PhoneDirectory = FakePhoneDirectory()
    configurations: ConfigurationStore = InMemoryConfigurationStore()
    directory: ConfigurationDirectory = FakeConfigurationDirectory()
    writer: ConversationWriter = FakeConversationWriter()
    relinker: ConversationRelinker = FakeConversationRelinker()
    errors: ErrorLog = FakeErrorLog()
    media: MediaFetcher = FakeMediaFetcher()
    resolver: RecordResolver = TableResolver()
    templates: TemplateCatalog = FakeTemplateCatalog()
    records: RecordReader = FakeRecordReader()
    consent: ConsentLedgerWriter = FakeConsentLedger()
    ports += [sms, phones, configurations, directory, writer, relinker, errors, media, resolver]
    ports += [templates, records, consent]
    assert len({type(p) for p in ports}) == len(ports)


def test_fake_sms_provider() -> None:
    contract.sms_provider_contract(
        FakeSmsProvider(auth_token=LOCAL_AUTH_TOKEN), LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
    )


class FakeContacts:
    def __init__(self, directory: FakePhoneDirectory) -> None:
        self.directory = directory
        self.count = 0

    def add(self, mobilephone: str) -> str:
        self.count += 1
        contact_id = f"00000000-0000-0000-0000-{self.count:012d}"
        self.directory.put(
            "contact", {"contactid": contact_id, "mobilephone": mobilephone}, "contactid"
        )
        return contact_id

    def remove(self, contact_id: str) -> None:
        self.directory.remove("contact", contact_id)


def test_fake_phone_directory() -> None:
    directory = FakePhoneDirectory(page_size=1)  # pages, as Dataverse pages
    contract.phone_directory_contract(directory, FakeContacts(directory))


def test_in_memory_configuration_store() -> None:
    contract.configuration_store_contract(InMemoryConfigurationStore())


class FakeConfigurationRows:
    def __init__(self, directory: FakeConfigurationDirectory) -> None:
        self.directory = directory

    def add(self, config: Configuration) -> str:
        config_id = f"cfg-{len(self.directory.configurations) + 1}"
        self.directory.configurations.append(replace(config, id=config_id))
        return config_id

    def block(self, configuration_id: str, phone: str) -> None:
        self.directory.blocked.setdefault(configuration_id, set()).add(phone)


def test_fake_configuration_directory() -> None:
    directory = FakeConfigurationDirectory()
    contract.configuration_directory_contract(directory, FakeConfigurationRows(directory))


class FakeWritten:
    def __init__(self, writer: FakeConversationWriter) -> None:
        self.writer = writer

    def bodies(self) -> dict[str, str]:
        return {pid: w.message.body for pid, w in self.writer.messages.items()}


def test_fake_conversation_writer() -> None:
    writer = FakeConversationWriter()
    contract.conversation_writer_contract(writer, FakeWritten(writer), "cfg-1", CONTACT)


class FakeSessionMessages:
    def __init__(self, relinker: FakeConversationRelinker) -> None:
        self.relinker = relinker

    def add(self, session_id: str, regarding: RecordRef, count: int) -> None:
        ids = [f"{session_id}-m{n}" for n in range(count)]
        self.relinker.add_messages(session_id, regarding, ids)

    def regarding(self, session_id: str) -> list[RecordRef | None]:
        messages = self.relinker.messages
        return [ref for mid, (sid, ref) in sorted(messages.items()) if sid == session_id]


def test_fake_conversation_relinker() -> None:
    ghost = RecordRef("contact", "00000000-0000-0000-0000-00000000dead")
    relinker = FakeConversationRelinker(missing={ghost})  # it holds no records: told which not
    messages = FakeSessionMessages(relinker)
    contract.conversation_relinker_contract(
        relinker, messages, source=CONTACT, target=OTHER, ghost=ghost, session_id="s-1"
    )


class FakeErrorRows:
    def __init__(self, log: FakeErrorLog) -> None:
        self.log = log

    def rows(self) -> list[tuple[str, str]]:
        return sorted((str(r["code"]), str(r["message"])) for r in self.log.rows.values())


def test_fake_error_log() -> None:
    log = FakeErrorLog()
    contract.error_log_contract(log, FakeErrorRows(log))


def test_fake_media_fetcher() -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME0123"
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    contract.media_fetcher_contract(FakeMediaFetcher({url: data}), url, data, "AC1")


def test_table_resolver() -> None:
    resolver = TableResolver({"+14155550101": CONTACT})
    contract.record_resolver_contract(resolver, "+14155550101", CONTACT)


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_record_resolution_service_in_memory(closing: ExitStack) -> None:
    directory = FakePhoneDirectory()
    directory.put("contact", {"contactid": CONTACT.id, "mobilephone": "+14155550101"}, "contactid")
    store = StateStore.from_url("sqlite://")
    closing.callback(store.close)
    index = PhoneIndex(store)
    closing.callback(index.close)
    PhoneSync(directory, index, lookup_key).run(default_specs("US"), "US", full=True)
    resolver = RecordResolutionService(
        index,
        ResolutionLedger(store),
        directory,
        lookup_key=lookup_key,
        variants=search_variants,
        normalize=lookup_key,
    )
    contract.record_resolver_contract(resolver, "+14155550101", CONTACT)


class FakeTemplateRows:
    def __init__(self, catalog: FakeTemplateCatalog) -> None:
        self.catalog = catalog

    def add(self, template: Template) -> str:
        return str(self.catalog.add(template).id)


def test_fake_template_catalog() -> None:
    catalog = FakeTemplateCatalog()
    contract.template_catalog_contract(catalog, FakeTemplateRows(catalog))


class FakeCustomers:
    def __init__(self, reader: FakeRecordReader) -> None:
        self.reader = reader

    def add(self, firstname: str | None, company: str | None) -> str:
        contact_id = str(uuid.uuid4())
        values: dict[str, str | None] = {"firstname": firstname, "parentcustomerid": None}
        if company is not None:
            del values["parentcustomerid"]
            values |= {"parentcustomerid.name": company, "parentcustomerid.accountnumber": "A-1"}
        self.reader.put("contact", contact_id, values)
        return contact_id


def test_fake_record_reader() -> None:
    reader = FakeRecordReader()
    contract.record_reader_contract(reader, FakeCustomers(reader))


class FakeConsentRows:
    def __init__(self, ledger: FakeConsentLedger) -> None:
        self.ledger = ledger

    def current(
        self, phone: str, configuration_id: str, purpose: MessageCategory
    ) -> tuple[ConsentStatus, ConsentMethod, str | None] | None:
        row = self.ledger.current.get((phone, configuration_id, purpose))
        if row is None:
            return None
        return row.change.status, row.change.method, row.change.evidence.message_id

    def history(self) -> dict[str, ConsentStatus]:
        return {change_id: c.status for change_id, c in self.ledger.history.items()}

    def edit(
        self, phone: str, configuration_id: str, purpose: MessageCategory, status: ConsentStatus
    ) -> None:
        self.ledger.edit(phone, configuration_id, purpose, status)


def test_fake_consent_ledger() -> None:
    ledger = FakeConsentLedger()
    contract.consent_ledger_contract(ledger, FakeConsentRows(ledger), str(uuid.uuid4()))


def test_fake_consent_ledger_down_fails_every_change_transiently() -> None:
    ledger = FakeConsentLedger(down=True)
    change = contract.consent_change(
        "api-1",
        str(uuid.uuid4()),
        MessageCategory.COMMERCIAL,
        ConsentStatus.OPTED_IN,
        ConsentMethod.API,
        at=1_767_000_000.0,
    )
    errors = ledger.write([change, change])
    assert len(errors) == 2 and all(e is not None and is_transient(e) for e in errors)
    assert ledger.current == {} and ledger.history == {}
