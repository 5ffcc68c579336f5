"""The real adapters through the same port contracts as the shipped fakes (tests/port_contracts).

Dataverse adapters against the session's emulator (fresh, or with the solution schema
installed), the Twilio provider and media fetcher against the Twilio simulator, all over
loopback; what they did is read back from the emulator's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from connector.bootstrap.server_thread import running
from connector.crm import tables
from connector.crm.configuration_store import DataverseConfigurationStore
from connector.crm.consent_rows import DataverseConsentLedger
from connector.crm.conversation_links import DataverseConversationRelinker
from connector.crm.conversations import DataverseConversations, DataverseErrorLog
from connector.crm.phone_directory import DataversePhoneDirectory
from connector.crm.templates import DataverseRecordReader, DataverseTemplates
from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.domain.consent import ConsentMethod, ConsentStatus
from connector.domain.model import Configuration, MessageCategory, Provider, Template
from connector.domain.routing import RecordRef
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
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
    SmsProvider,
    TemplateCatalog,
)
from connector.providers.twilio.client import TwilioProvider
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.providers.twilio.media import ProviderMediaFetcher
from connector.testing.emulator_client import emulator_client
from tests import port_contracts as contract


@pytest.fixture
def client(emulator_url: str) -> Iterator[DataverseClient]:
    dv = emulator_client(emulator_url, page_size=1)  # every read pages
    yield dv
    dv.api.close()


@pytest.fixture
def simulator() -> Iterator[tuple[SimulatorEngine, str]]:
    engine = SimulatorEngine(SimulatorOptions(deliver=False))
    with running(create_simulator_app(engine)) as url:
        yield engine, url
    engine.close()


def test_twilio_provider(simulator: tuple[SimulatorEngine, str]) -> None:
    _, url = simulator
    provider: SmsProvider = TwilioProvider(
        LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, api_base_url=url, sleep=lambda _s: None
    )
    contract.sms_provider_contract(provider, LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)


def test_provider_media_fetcher(simulator: tuple[SimulatorEngine, str]) -> None:
    engine, url = simulator
    path = f"/2010-04-01/Accounts/{LOCAL_ACCOUNT_SID}/Messages/MM1/Media/ME0123"
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    engine.host_media(path, "image/png", data)
    fetcher: MediaFetcher = ProviderMediaFetcher(
        lambda _account: (LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN), allowed_origins=[url]
    )
    contract.media_fetcher_contract(fetcher, url + path, data, LOCAL_ACCOUNT_SID)


class Contacts:
    def __init__(self, client: DataverseClient) -> None:
        self.client = client

    def add(self, mobilephone: str) -> str:
        return self.client.create("contacts", {"lastname": "Row", "mobilephone": mobilephone})

    def remove(self, contact_id: str) -> None:
        self.client.delete("contacts", contact_id)


def test_dataverse_phone_directory(client: DataverseClient) -> None:
    directory: PhoneDirectory = DataversePhoneDirectory(client, page_size=1)
    contract.phone_directory_contract(directory, Contacts(client))


def test_dataverse_configuration_store(installed: DataverseClient) -> None:
    store: ConfigurationStore = DataverseConfigurationStore(installed)
    contract.configuration_store_contract(store)


class ConfigurationRows:
    def __init__(self, client: DataverseClient) -> None:
        self.store = DataverseConfigurationStore(client)
        self.conversations = DataverseConversations(client)

    def add(self, config: Configuration) -> str:
        return str(self.store.save_configuration(config).id)

    def block(self, configuration_id: str, phone: str) -> None:
        self.conversations.block_number(configuration_id, phone, None)


def test_dataverse_configuration_directory(installed: DataverseClient) -> None:
    directory: ConfigurationDirectory = DataverseConversations(installed)
    contract.configuration_directory_contract(directory, ConfigurationRows(installed))


class Messages:
    """Message rows in the emulator, and sessions given messages through the real writer."""

    def __init__(self, client: DataverseClient, configuration_id: str) -> None:
        self.client = client
        self.configuration_id = configuration_id
        self.sent = 0

    def bodies(self) -> dict[str, str]:
        rows = self.client.query("smsc_messages", select=["smsc_providermessageid", "smsc_body"])
        return {str(r["smsc_providermessageid"]): str(r["smsc_body"]) for r in rows}

    def add(self, session_id: str, regarding: RecordRef, count: int) -> None:
        writer = DataverseConversations(self.client)
        for _ in range(count):
            self.sent += 1
            write = contract.inbound_write(
                self.configuration_id, regarding, f"SM{self.sent:032d}", "hi", 1_767_000_000.0
            )
            writer.write_inbound(replace(write, session=replace(write.session, id=session_id)))

    def regarding(self, session_id: str) -> list[RecordRef | None]:
        column = tables.MESSAGE.value(tables.SESSION_LOOKUP)
        answer = self.client.request(
            "GET",
            "smsc_messages",
            query={
                "$select": "_regardingobjectid_value,smsc_providermessageid",
                "$filter": str(odata.eq(column, uuid.UUID(session_id))),
            },
            headers={"Prefer": 'odata.include-annotations="*"'},  # the lookup's table
        )
        rows = answer.json()["value"]
        found: list[RecordRef | None] = []
        for row in sorted(rows, key=lambda r: str(r["smsc_providermessageid"])):
            value = row.get("_regardingobjectid_value")
            table = row.get("_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname")
            found.append(RecordRef(str(table), str(value)) if value else None)
        return found


def _configuration_and_contact(client: DataverseClient) -> tuple[str, RecordRef]:
    config = DataverseConfigurationStore(client).save_configuration(
        Configuration("Main", Provider.TWILIO, contract.SENDER)
    )
    contact = client.create("contacts", {"lastname": "Customer", "mobilephone": contract.CUSTOMER})
    return str(config.id), RecordRef("contact", contact)


def test_dataverse_conversation_writer(installed: DataverseClient) -> None:
    config_id, customer = _configuration_and_contact(installed)
    writer: ConversationWriter = DataverseConversations(installed)
    contract.conversation_writer_contract(
        writer, Messages(installed, config_id), config_id, customer
    )


def test_dataverse_conversation_relinker(installed: DataverseClient) -> None:
    config_id, customer = _configuration_and_contact(installed)
    other = RecordRef("contact", installed.create("contacts", {"lastname": "Other"}))
    relinker: ConversationRelinker = DataverseConversationRelinker(installed)
    contract.conversation_relinker_contract(
        relinker,
        Messages(installed, config_id),
        source=customer,
        target=other,
        ghost=RecordRef("contact", str(uuid.uuid4())),
        session_id=str(uuid.uuid4()),
    )


class ErrorRows:
    def __init__(self, client: DataverseClient) -> None:
        self.client = client

    def rows(self) -> list[tuple[str, str]]:
        found = self.client.query("smsc_errorlogs", select=["smsc_code", "smsc_name"])
        return sorted((str(r["smsc_code"]), str(r["smsc_name"])) for r in found)


def test_dataverse_error_log(installed: DataverseClient) -> None:
    log: ErrorLog = DataverseErrorLog(installed)
    contract.error_log_contract(log, ErrorRows(installed))


class TemplateRows:
    def __init__(self, client: DataverseClient) -> None:
        self.client = client

    def add(self, template: Template) -> str:
        return self.client.create(tables.TEMPLATE.entity_set, tables.template_to_row(template))


def test_dataverse_templates(installed: DataverseClient) -> None:
    catalog: TemplateCatalog = DataverseTemplates(installed)
    contract.template_catalog_contract(catalog, TemplateRows(installed))


class Customers:
    def __init__(self, client: DataverseClient) -> None:
        self.client = client

    def add(self, firstname: str | None, company: str | None) -> str:
        row: dict[str, str | None] = {"firstname": firstname, "lastname": "Customer"}
        if company is not None:
            account = self.client.create("accounts", {"name": company, "accountnumber": "A-1"})
            row["parentcustomerid_account@odata.bind"] = f"/accounts({account})"
        return self.client.create("contacts", row)


def test_dataverse_record_reader(client: DataverseClient) -> None:
    reader: RecordReader = DataverseRecordReader(client)
    contract.record_reader_contract(reader, Customers(client))


class ConsentRows:
    """The consent rows in the emulator: current rows by alternate key, the history rows."""

    def __init__(self, client: DataverseClient) -> None:
        self.client = client

    def current(
        self, phone: str, configuration_id: str, purpose: MessageCategory
    ) -> tuple[ConsentStatus, ConsentMethod, str | None] | None:
        key = tables.consent_key(phone, configuration_id, purpose)
        row = self.client.retrieve_or_none(tables.CONSENT.entity_set, key)
        if row is None:
            return None
        change = tables.consent_from_row(row)
        return change.status, change.method, change.evidence.message_id

    def history(self) -> dict[str, ConsentStatus]:
        statuses = {v: k for k, v in tables.CONSENT_STATUS_OPTIONS.items()}
        table = tables.CONSENT_CHANGE
        rows = self.client.query(table.entity_set, select=[table.id_column, "smsc_status"])
        return {str(r[table.id_column]): statuses[int(r["smsc_status"])] for r in rows}

    def edit(
        self, phone: str, configuration_id: str, purpose: MessageCategory, status: ConsentStatus
    ) -> None:
        key = tables.consent_key(phone, configuration_id, purpose)
        body = {"smsc_status": tables.CONSENT_STATUS_OPTIONS[status]}
        self.client.update(tables.CONSENT.entity_set, key, body)


def test_dataverse_consent_ledger(installed: DataverseClient) -> None:
    config_id, _ = _configuration_and_contact(installed)
    ledger: ConsentLedgerWriter = DataverseConsentLedger(installed)
    contract.consent_ledger_contract(ledger, ConsentRows(installed), config_id)
