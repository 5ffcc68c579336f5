"""Settings: validated at start-up, errors name the variable, secrets never shown."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from connector.errors import ConfigurationError
from connector.settings import load_settings, redacted


def test_defaults_mean_local_mode() -> None:
    settings = load_settings({})
    assert settings.local_mode
    assert settings.state.url.startswith("sqlite:")


def test_nested_sections_use_double_underscore() -> None:
    settings = load_settings(
        {
            "CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
            "CONNECTOR_DATAVERSE__TENANT_ID": "tenant",
            "CONNECTOR_DATAVERSE__CLIENT_ID": "client",
            "CONNECTOR_DATAVERSE__CLIENT_SECRET": "s3cret",
            "CONNECTOR_SERVER__PORT": "9000",
        }
    )
    assert not settings.local_mode
    assert str(settings.dataverse.url) == "https://contoso.crm.dynamics.com/"
    assert settings.server.port == 9000
    assert settings.dataverse.client_secret is not None
    assert settings.dataverse.client_secret.get_secret_value() == "s3cret"


def test_api_keys_accept_comma_separated_list() -> None:
    settings = load_settings({"CONNECTOR_API__KEYS": "k1, k2"})
    assert [k.get_secret_value() for k in settings.api.keys] == ["k1", "k2"]


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"CONNECTOR_DATAVERSE__URL": "not a url"}, "CONNECTOR_DATAVERSE__URL", "URL"),
        ({"CONNECTOR_SERVER__PORT": "99999"}, "CONNECTOR_SERVER__PORT", "65535"),
        ({"CONNECTOR_SECRET_KEYS": "short"}, "CONNECTOR_SECRET_KEYS", "Fernet"),
        ({"CONNECTOR_STATE__URL": "mysql://x"}, "CONNECTOR_STATE__URL", "sqlite"),
        ({"CONNECTOR_TWILIO__ACCOUNT_SID": "XX123"}, "CONNECTOR_TWILIO__ACCOUNT_SID", "pattern"),
        (
            {"CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com"},
            "CONNECTOR_DATAVERSE",
            "tenant_id",
        ),
    ],
)
def test_bad_setting_names_the_variable(env: dict[str, str], variable: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    assert variable in caught.value.message
    assert fragment in caught.value.message


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"CONNECTOR_SERVER__PORT": "-1", "CONNECTOR_LOG__LEVEL": "LOUD"})
    assert "CONNECTOR_SERVER__PORT" in caught.value.message
    assert "CONNECTOR_LOG__LEVEL" in caught.value.message


def test_redacted_view_hides_every_secret() -> None:
    key = Fernet.generate_key().decode()
    settings = load_settings(
        {
            "CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
            "CONNECTOR_DATAVERSE__TENANT_ID": "tenant",
            "CONNECTOR_DATAVERSE__CLIENT_ID": "client",
            "CONNECTOR_DATAVERSE__CLIENT_SECRET": "dv-secret-value",
            "CONNECTOR_TWILIO__AUTH_TOKEN": "tw-token-value",
            "CONNECTOR_API__KEYS": "api-key-value",
            "CONNECTOR_SECRET_KEYS": key,
        }
    )
    text = json.dumps(redacted(settings))
    for secret in ("dv-secret-value", "tw-token-value", "api-key-value", key):
        assert secret not in text
    assert redacted(settings)["dataverse"]["client_id"] == "client"


def test_redacted_view_hides_credentials_inside_every_url() -> None:
    settings = load_settings(
        {
            "CONNECTOR_STATE__URL": "postgresql+psycopg://connector:pg-pass-word@db:5432/sms"
            "?sslmode=require&password=pg-query-secret",
            "CONNECTOR_DATAVERSE__URL": "https://dv-user:dv-url-secret@contoso.crm.dynamics.com",
            "CONNECTOR_DATAVERSE__TOKEN": "static-token",
            "CONNECTOR_TWILIO__API_BASE_URL": "http://tw:tw-url-secret@127.0.0.1:9/",
            "CONNECTOR_PUBLIC_BASE_URL": "https://hook:hook-secret@sms.example.com/?token=t-secret",
        }
    )
    shown = redacted(settings)
    text = json.dumps(shown)
    for secret in ("pg-pass-word", "pg-query-secret", "dv-url-secret", "tw-url-secret",
                   "hook-secret", "t-secret"):  # fmt: skip
        assert secret not in text
    assert shown["state"]["url"] == (
        "postgresql+psycopg://connector:**********@db:5432/sms?sslmode=require&password=**********"
    )
    assert settings.state.url.endswith("password=pg-query-secret")  # the real value is intact


def test_queue_url_is_redis_and_its_password_never_shows() -> None:
    settings = load_settings({"CONNECTOR_QUEUE__URL": "redis://:q-secret@cache:6379/2"})
    assert settings.queue.url == "redis://:q-secret@cache:6379/2"
    shown = redacted(settings)
    assert shown["queue"]["url"] == "redis://:**********@cache:6379/2"
    assert "q-secret" not in json.dumps(shown)
    assert load_settings({}).queue.url is None  # unset: the one-machine SQLite queue


def test_a_queue_url_that_is_not_redis_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"CONNECTOR_QUEUE__URL": "amqp://broker:5672/"})
    assert "CONNECTOR_QUEUE__URL" in caught.value.message
    assert "redis://" in caught.value.message
