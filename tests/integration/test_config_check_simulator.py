"""``connector config check`` asks the Twilio simulator (real SDK, real HTTP) where a
configuration's number posts inbound messages: match, mismatch, unknown number, bad
credentials, and the raw ``IncomingPhoneNumbers.json`` answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from connector.bootstrap.config_check import (
    TWILIO_NOT_ASKED,
    TWILIO_NUMBER_NOT_IN_ACCOUNT,
    TWILIO_SMS_URL_MISMATCH,
    twilio_factory,
    webhook_findings,
)
from connector.bootstrap.server_thread import running
from connector.domain.model import Configuration, Provider
from connector.domain.provider_messages import IncomingNumber
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.providers.twilio.client import TwilioProvider
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.settings import Settings, load_settings

PUBLIC = "https://sms.example.com"
INBOUND = f"{PUBLIC}/webhooks/twilio/messages"
NUMBER = "+14155550100"
OTHER = "+14155550199"


@pytest.fixture
def engine() -> Iterator[SimulatorEngine]:
    engine = SimulatorEngine(
        SimulatorOptions(inbound_url=INBOUND, numbers={NUMBER: None, OTHER: "https://old/sms"})
    )
    yield engine
    engine.close()


@pytest.fixture
def simulator(engine: SimulatorEngine) -> Iterator[str]:
    with running(create_simulator_app(engine)) as url:
        yield url


def _settings(simulator: str, token: str = LOCAL_AUTH_TOKEN) -> Settings:
    return load_settings(
        {
            "CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
            "CONNECTOR_DATAVERSE__TOKEN": "static",
            "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
            "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
            "CONNECTOR_TWILIO__AUTH_TOKEN": token,
            "CONNECTOR_TWILIO__API_BASE_URL": simulator,
        }
    )


def _config(number: str, provider: Provider = Provider.TWILIO) -> Configuration:
    return Configuration(
        name="Sales", provider=provider, sender_number=number, account_id=LOCAL_ACCOUNT_SID
    )


def test_the_provider_reads_a_numbers_sms_url(simulator: str) -> None:
    provider = TwilioProvider(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, api_base_url=simulator)
    ours = provider.incoming_number(NUMBER)
    assert ours is not None
    assert ours == IncomingNumber(NUMBER, ours.id, INBOUND)
    assert ours.id is not None
    assert ours.id.startswith("PN")
    other = provider.incoming_number(OTHER)
    assert other is not None
    assert other.sms_url == "https://old/sms"
    assert provider.incoming_number("+14155550111") is None
    assert provider.incoming_number("+1415555010") is None  # a partial match is not the number


def test_the_simulator_lists_numbers_like_twilio(simulator: str) -> None:
    url = f"{simulator}/2010-04-01/Accounts/{LOCAL_ACCOUNT_SID}/IncomingPhoneNumbers.json"
    answer = requests.get(
        url, params={"PhoneNumber": NUMBER}, auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN), timeout=5
    )
    assert answer.status_code == 200
    numbers = answer.json()["incoming_phone_numbers"]
    assert [(n["phone_number"], n["sms_url"]) for n in numbers] == [(NUMBER, INBOUND)]
    assert numbers[0]["sid"].startswith("PN")
    refused = requests.get(url, auth=(LOCAL_ACCOUNT_SID, "wrong"), timeout=5)
    assert refused.status_code == 401


def test_a_number_pointing_at_us_has_no_finding(simulator: str) -> None:
    settings = _settings(simulator)
    findings = webhook_findings(
        settings, [_config(NUMBER), _config(NUMBER, Provider.SIMULATOR)], PUBLIC,
        twilio_factory(simulator),
    )  # fmt: skip
    assert findings == []


def test_a_number_pointing_elsewhere_is_an_error(simulator: str, engine: SimulatorEngine) -> None:
    settings = _settings(simulator)
    findings = webhook_findings(settings, [_config(OTHER)], PUBLIC, twilio_factory(simulator))
    assert [f.code for f in findings] == [TWILIO_SMS_URL_MISMATCH]
    assert "https://old/sms" in findings[0].message
    assert INBOUND in findings[0].message
    # moved at the provider: the next check passes
    requests.post(
        f"{simulator}/_simulator/options", json={"numbers": {OTHER: INBOUND}}, timeout=5
    ).raise_for_status()
    assert webhook_findings(settings, [_config(OTHER)], PUBLIC, twilio_factory(simulator)) == []


def test_a_number_the_account_lacks_is_an_error(simulator: str) -> None:
    settings = _settings(simulator)
    findings = webhook_findings(
        settings, [_config("+14155550111")], PUBLIC, twilio_factory(simulator)
    )
    assert [f.code for f in findings] == [TWILIO_NUMBER_NOT_IN_ACCOUNT]


def test_refused_or_unreachable_provider_is_a_warning(simulator: str) -> None:
    bad = _settings(simulator, token="not-the-token")
    findings = webhook_findings(bad, [_config(NUMBER)], PUBLIC, twilio_factory(simulator))
    assert [f.code for f in findings] == [TWILIO_NOT_ASKED]
    assert "not-the-token" not in findings[0].message
    gone = webhook_findings(
        _settings(simulator), [_config(NUMBER)], PUBLIC, twilio_factory("http://127.0.0.1:9")
    )
    assert [f.code for f in gone] == [TWILIO_NOT_ASKED]


def test_inactive_and_other_provider_configurations_are_skipped(simulator: str) -> None:
    settings = _settings(simulator)
    inactive = Configuration(
        name="Old", provider=Provider.TWILIO, sender_number=OTHER, active=False
    )
    acs = Configuration(name="ACS", provider=Provider.ACS, sender_number=OTHER)
    assert webhook_findings(settings, [inactive, acs], PUBLIC, twilio_factory(simulator)) == []
