"""The setup use case over the in-memory configuration store and a real SecretBox."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from connector.domain.model import KeywordAction, Provider, RecordType, ValidationStatus
from connector.domain.provider_messages import CredentialReport
from connector.errors import InvalidInputError
from connector.ports import ConfigurationStore, SecretCipher
from connector.secret_box import SecretBox
from connector.services.setup import SetupRequest, provider_secret, run_setup
from connector.testing.configuration_store import InMemoryConfigurationStore

TOKEN = "f" * 32
SID = "AC" + "1" * 32


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([Fernet.generate_key().decode()])


def _request(**changes: object) -> SetupRequest:
    values: dict[str, object] = {
        "sender": "(415) 555-0100",
        "provider": Provider.TWILIO,
        "account_sid": SID,
        "auth_token": TOKEN,
        "default_country": "us",
        "public_base_url": "https://sms.example.com/",
    }
    values.update(changes)
    return SetupRequest(**values)  # type: ignore[arg-type]


def test_shipped_fake_and_secret_box_satisfy_the_ports() -> None:
    store: ConfigurationStore = InMemoryConfigurationStore()
    cipher: SecretCipher = SecretBox([Fernet.generate_key().decode()])
    assert store is not None and cipher is not None


def test_setup_creates_configuration_with_defaults(box: SecretBox) -> None:
    store = InMemoryConfigurationStore()
    result = run_setup(_request(), store, box)
    config = result.configuration
    assert result.created
    assert config.sender_number == "+14155550100" and config.default_country == "US"
    assert config.callback_url == "https://sms.example.com/webhooks/twilio/messages"
    assert config.account_id == SID
    assert config.secret is not None and TOKEN not in config.secret
    assert box.decrypt(config.secret) == TOKEN
    by_table = {rt.table: rt for rt in result.record_types}
    assert [rt.table for rt in result.record_types] == ["contact", "account", "opportunity", "lead"]
    assert by_table["contact"].phone_columns == ("mobilephone", "telephone1", "telephone2")
    assert by_table["account"].phone_columns == ("telephone1", "telephone2")
    assert by_table["lead"].phone_columns == ("mobilephone", "telephone1")
    opportunity: RecordType = by_table["opportunity"]
    assert opportunity.related and opportunity.priority == 3
    assert dict(opportunity.parent_lookups) == {
        "parentcontactid": "contact",
        "parentaccountid": "account",
    }
    assert opportunity.related_record_type_id == by_table["contact"].id
    actions = {kw.keyword: kw.action for kw in result.keywords}
    assert actions["STOP"] is KeywordAction.OPT_OUT and actions["QUIT"] is KeywordAction.OPT_OUT
    assert actions["UNSTOP"] is KeywordAction.OPT_IN and actions["INFO"] is KeywordAction.HELP
    assert len(actions) == 13


def test_second_setup_leaves_one_set_and_writes_only_the_configuration(box: SecretBox) -> None:
    store = InMemoryConfigurationStore()
    first = run_setup(_request(), store, box)
    writes = store.writes
    second = run_setup(_request(sender="+1 415 555 0100", auth_token=None), store, box)
    assert not second.created
    assert second.configuration.id == first.configuration.id
    assert second.configuration.secret == first.configuration.secret
    assert store.writes == writes + 1
    assert (second.added_record_types, second.added_keywords) == ((), ())
    assert len(store.configurations) == 1
    assert len(store.record_type_rows) == 4 and len(store.keyword_rows) == 13


def test_admin_edits_to_record_types_survive_setup(box: SecretBox) -> None:
    store = InMemoryConfigurationStore()
    first = run_setup(_request(), store, box)
    contact = next(rt for rt in first.record_types if rt.table == "contact")
    store.save_record_type(RecordType("contact", contact.configuration_id, phone_columns=("x",)))
    run_setup(_request(), store, box)
    again = [rt for rt in store.record_types(str(first.configuration.id)) if rt.table == "contact"]
    assert again[0].phone_columns == ("x",)


def test_missing_base_url_and_token_are_warned_about(box: SecretBox) -> None:
    result = run_setup(
        _request(auth_token=None, public_base_url=None), InMemoryConfigurationStore(), box
    )
    assert result.configuration.callback_url is None
    assert any("PUBLIC_BASE_URL" in w for w in result.warnings)
    assert any("--auth-token" in w for w in result.warnings)


def test_invalid_sender_is_refused_naming_the_input(box: SecretBox) -> None:
    with pytest.raises(InvalidInputError, match="'12ab'"):
        run_setup(_request(sender="12ab"), InMemoryConfigurationStore(), box)


def test_plain_token_typed_by_an_admin_is_encrypted_on_first_read(box: SecretBox) -> None:
    store = InMemoryConfigurationStore()
    config = run_setup(_request(auth_token=None), store, box).configuration
    typed = replace(config, secret=TOKEN)
    assert provider_secret(typed, box, store) == TOKEN
    stored = store.find_configuration(config.sender_number)
    assert stored is not None and stored.secret is not None and TOKEN not in stored.secret
    writes = store.writes
    assert provider_secret(stored, box, store) == TOKEN
    assert store.writes == writes
    assert provider_secret(replace(config, secret=None), box, store) is None


def test_credentials_are_checked_and_the_outcome_stored(box: SecretBox) -> None:
    seen: list[tuple[str, str]] = []

    def check(account_id: str, token: str) -> CredentialReport:
        seen.append((account_id, token))
        return CredentialReport(ok=True, account_id=account_id, warnings=("trial account",))

    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    store = InMemoryConfigurationStore()
    result = run_setup(_request(), store, box, check, now=when)
    assert seen == [(SID, TOKEN)]
    config = result.configuration
    assert config.validation_status is ValidationStatus.VALID
    assert (config.validation_message, config.last_validated_on) == ("trial account", when)


def test_refused_credentials_mark_the_configuration_invalid(box: SecretBox) -> None:
    def check(account_id: str, token: str) -> CredentialReport:
        return CredentialReport(ok=False, account_id=account_id, problem="Authenticate (20003)")

    store = InMemoryConfigurationStore()
    result = run_setup(_request(), store, box, check)
    assert result.configuration.validation_status is ValidationStatus.INVALID
    assert result.configuration.validation_message == "Authenticate (20003)"
    assert any("credentials not valid" in w for w in result.warnings)
    assert len(store.configurations) == 1


def test_no_secret_means_no_credential_check(box: SecretBox) -> None:
    def check(account_id: str, token: str) -> CredentialReport:
        raise AssertionError("must not be called without a secret")

    result = run_setup(_request(auth_token=None), InMemoryConfigurationStore(), box, check)
    assert result.validation is None
    assert result.configuration.validation_status is ValidationStatus.DRAFT


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"default_country": "USA"}, "--default-country"),
        ({"default_country": "1!"}, "--default-country"),
        ({"account_sid": "AC123"}, "--account-sid"),
        ({"name": "x" * 101}, "--name"),
        ({"auth_token": "t" * 513}, "--auth-token"),
    ],
)
def test_out_of_bounds_options_are_refused_before_anything_is_written(
    box: SecretBox, changes: dict[str, object], message: str
) -> None:
    store = InMemoryConfigurationStore()
    with pytest.raises(InvalidInputError, match=message):
        run_setup(_request(**changes), store, box)
    assert store.writes == 0
