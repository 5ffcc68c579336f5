"""``connector config check``'s production findings, from settings and a provider's answer."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from cryptography.fernet import Fernet

from connector.bootstrap.config_check import (
    MICROSOFT_SIGNIN_WITHOUT_HTTPS,
    NO_API_KEYS,
    NO_PUBLIC_BASE_URL,
    NO_SECRET_KEYS,
    QUEUE_NOT_SHARED,
    TWILIO_NOT_ASKED,
    TWILIO_NUMBER_NOT_IN_ACCOUNT,
    TWILIO_SMS_URL_MISMATCH,
    Finding,
    Severity,
    failed,
    number_findings,
    run_checks,
    settings_findings,
    twilio_credentials,
)
from connector.domain.model import Configuration, Provider
from connector.domain.provider_messages import IncomingNumber
from connector.errors import ProviderError
from connector.secret_box import SecretBox
from connector.settings import Settings, load_settings

PUBLIC = "https://sms.example.com"
INBOUND = f"{PUBLIC}/webhooks/twilio/messages"
ACCOUNT = "AC" + "1" * 32
KEY = Fernet.generate_key().decode()
ANY_HOST = "0.0.0.0"  # noqa: S104 - the value checked, nothing listens
PRODUCTION = {
    "CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
    "CONNECTOR_DATAVERSE__TOKEN": "static-token",
}
COMPLETE = {
    **PRODUCTION,
    "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
    "CONNECTOR_SECRET_KEYS": KEY,
}
CONFIG = Configuration(
    name="Sales", provider=Provider.TWILIO, sender_number="+14155550100", account_id=ACCOUNT
)


def _settings(env: Mapping[str, str]) -> Settings:
    return load_settings(dict(env))


def _codes(findings: list[Finding]) -> dict[str, Severity]:
    return {finding.code: finding.severity for finding in findings}


def test_complete_production_settings_have_no_findings() -> None:
    assert settings_findings(_settings(COMPLETE)) == []


def test_no_public_base_url_outside_local_mode_is_an_error() -> None:
    env = {k: v for k, v in COMPLETE.items() if k != "CONNECTOR_PUBLIC_BASE_URL"}
    findings = settings_findings(_settings(env))
    assert _codes(findings) == {NO_PUBLIC_BASE_URL: Severity.ERROR}
    assert "CONNECTOR_PUBLIC_BASE_URL" in findings[0].message
    assert "signature" in findings[0].message
    assert failed(findings)


def test_local_mode_needs_no_public_base_url() -> None:
    assert NO_PUBLIC_BASE_URL not in _codes(settings_findings(_settings({})))


def test_no_secret_keys_is_an_error_in_production_and_a_warning_locally() -> None:
    env = {k: v for k, v in COMPLETE.items() if k != "CONNECTOR_SECRET_KEYS"}
    findings = settings_findings(_settings(env))
    assert _codes(findings) == {NO_SECRET_KEYS: Severity.ERROR}
    assert "connector config new-key" in findings[0].message
    local = settings_findings(_settings({}))
    assert _codes(local) == {NO_SECRET_KEYS: Severity.WARNING}
    assert not failed(local)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_no_api_keys_on_loopback_is_fine(host: str) -> None:
    settings = _settings({**COMPLETE, "CONNECTOR_SERVER__HOST": host})
    assert settings_findings(settings) == []


def test_no_api_keys_beyond_loopback_is_an_error() -> None:
    findings = settings_findings(_settings({**COMPLETE, "CONNECTOR_SERVER__HOST": ANY_HOST}))
    assert _codes(findings) == {NO_API_KEYS: Severity.ERROR}
    assert ANY_HOST in findings[0].message
    keyed = {**COMPLETE, "CONNECTOR_SERVER__HOST": ANY_HOST, "CONNECTOR_API__KEYS": "k1"}
    assert settings_findings(_settings(keyed)) == []


def test_findings_never_show_secrets() -> None:
    env = {
        **PRODUCTION,
        "CONNECTOR_TWILIO__AUTH_TOKEN": "tw-secret",
        "CONNECTOR_SERVER__HOST": "::",
    }
    for finding in settings_findings(_settings(env)):
        assert "tw-secret" not in finding.message
        assert "static-token" not in finding.message


def test_offline_run_asks_nothing() -> None:
    report = run_checks(_settings(PRODUCTION), offline=True)
    assert not report.online
    assert report.failed
    assert {f.code for f in report.findings} == {NO_PUBLIC_BASE_URL, NO_SECRET_KEYS}


def test_a_number_posting_to_us_is_fine() -> None:
    ours = IncomingNumber(CONFIG.sender_number, "PN1", INBOUND)
    assert number_findings(CONFIG, INBOUND, lambda: ours) == []


def test_a_number_posting_elsewhere_is_an_error_naming_both_urls() -> None:
    elsewhere = "https://old.example.com/sms"
    findings = number_findings(
        CONFIG, INBOUND, lambda: IncomingNumber(CONFIG.sender_number, "PN1", elsewhere)
    )
    assert _codes(findings) == {TWILIO_SMS_URL_MISMATCH: Severity.ERROR}
    assert elsewhere in findings[0].message
    assert INBOUND in findings[0].message
    unset = number_findings(CONFIG, INBOUND, lambda: IncomingNumber(CONFIG.sender_number))
    assert _codes(unset) == {TWILIO_SMS_URL_MISMATCH: Severity.ERROR}
    assert "no SmsUrl" in unset[0].message


def test_a_number_the_account_lacks_is_an_error() -> None:
    findings = number_findings(CONFIG, INBOUND, lambda: None)
    assert _codes(findings) == {TWILIO_NUMBER_NOT_IN_ACCOUNT: Severity.ERROR}
    assert ACCOUNT in findings[0].message


def test_a_provider_that_cannot_be_asked_is_a_warning() -> None:
    def unreachable() -> IncomingNumber | None:
        raise ProviderError("Twilio could not be reached")

    findings = number_findings(CONFIG, INBOUND, unreachable)
    assert _codes(findings) == {TWILIO_NOT_ASKED: Severity.WARNING}
    assert "could not be reached" in findings[0].message
    assert INBOUND in findings[0].message


def test_credentials_come_from_the_configuration_then_the_settings() -> None:
    settings = _settings(COMPLETE)
    stored = SecretBox([KEY]).encrypt("own-token")
    own = Configuration(
        name="Own", provider=Provider.TWILIO, sender_number="+1", account_id=ACCOUNT, secret=stored
    )
    assert twilio_credentials(settings, own) == (ACCOUNT, "own-token")
    plain = Configuration(
        name="Plain", provider=Provider.TWILIO, sender_number="+1", account_id=ACCOUNT, secret="t"
    )
    assert twilio_credentials(settings, plain) == (ACCOUNT, "t")
    none = twilio_credentials(settings, CONFIG)
    assert isinstance(none, str)
    assert "auth token" in none
    with_token = _settings({**COMPLETE, "CONNECTOR_TWILIO__AUTH_TOKEN": "env-token"})
    assert twilio_credentials(with_token, CONFIG) == (ACCOUNT, "env-token")
    other = _settings(
        {
            **COMPLETE,
            "CONNECTOR_TWILIO__AUTH_TOKEN": "env-token",
            "CONNECTOR_TWILIO__ACCOUNT_SID": "AC" + "2" * 32,
        }
    )
    assert isinstance(twilio_credentials(other, CONFIG), str)  # another account's token
    no_keys = _settings(PRODUCTION)
    reason = twilio_credentials(no_keys, own)
    assert isinstance(reason, str)
    assert "CONNECTOR_SECRET_KEYS" in reason


def test_a_postgresql_state_store_without_a_shared_queue_is_a_warning() -> None:
    fleet = {**COMPLETE, "CONNECTOR_STATE__URL": "postgresql://db:5432/sms"}
    findings = settings_findings(_settings(fleet))
    assert _codes(findings) == {QUEUE_NOT_SHARED: Severity.WARNING}
    assert "CONNECTOR_QUEUE__URL" in findings[0].message
    assert not failed(findings)
    shared = {**fleet, "CONNECTOR_QUEUE__URL": "redis://cache:6379/0"}
    assert settings_findings(_settings(shared)) == []


def test_microsoft_signin_needs_an_https_public_url() -> None:
    signin = {
        "CONNECTOR_API__ENTRA_ISSUER": "https://login.microsoftonline.com/t/v2.0",
        "CONNECTOR_API__ENTRA_AUDIENCE": "aud",
        "CONNECTOR_API__ENTRA_CLIENT_ID": "client",
        "CONNECTOR_API__ENTRA_CLIENT_SECRET": "page-secret-value",
    }
    assert MICROSOFT_SIGNIN_WITHOUT_HTTPS not in _codes(
        settings_findings(_settings({**COMPLETE, **signin}))
    )
    plain = _settings({**COMPLETE, **signin, "CONNECTOR_PUBLIC_BASE_URL": "http://sms.example.com"})
    findings = settings_findings(plain)
    assert _codes(findings)[MICROSOFT_SIGNIN_WITHOUT_HTTPS] is Severity.ERROR
    assert all("page-secret-value" not in f.message for f in findings)
