"""TwilioProvider against Twilio's HTTP API as ``responses`` replays it (adapter tests):
what it sends, which refusals it retries (429, 5xx, network) and which it never retries
(21211, 21610), Retry-After, and the credential check."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
import requests
import responses

from connector.domain.provider_messages import SendRequest
from connector.domain.status import MessageStatus
from connector.errors import ProviderError, ProviderThrottledError, RecipientOptedOutError
from connector.providers.twilio.client import TRIAL_WARNING, TwilioProvider

SID = "AC" + "a" * 32
API = f"https://api.twilio.com/2010-04-01/Accounts/{SID}"
MESSAGES = f"{API}/Messages.json"


def _created(status: str = "queued", sid: str = "SM" + "b" * 32) -> dict[str, object]:
    return {"sid": sid, "status": status, "num_segments": "2", "num_media": "0",
            "account_sid": SID, "error_code": None}  # fmt: skip


def _error(code: int, status: int, message: str = "refused") -> dict[str, object]:
    return {"code": code, "message": message, "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}"}  # fmt: skip


class Sleeps(list[float]):
    """Records the pauses the retry loop asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def provider(sleeps: Sleeps) -> TwilioProvider:
    return TwilioProvider(SID, "token", public_base_url="https://sms.example.com",
                          sleep=sleeps, max_attempts=4)  # fmt: skip


def _request(**overrides: object) -> SendRequest:
    values: dict[str, object] = {"message_id": "msg-1", "to": "+14155550100", "body": "Hello",
                                 "from_number": "+15005550006"}  # fmt: skip
    values.update(overrides)
    return SendRequest(**values)  # type: ignore[arg-type]


def _form(call: responses.Call) -> dict[str, list[str]]:
    body = call.request.body
    text = body.decode() if isinstance(body, bytes) else str(body)
    return parse_qs(text)


@responses.activate
def test_send_posts_sms_with_per_message_status_callback(provider: TwilioProvider) -> None:
    responses.post(MESSAGES, json=_created(), status=201)
    result = provider.send(_request(validity_period_s=600))
    form = _form(responses.calls[0])
    assert form["To"] == ["+14155550100"] and form["From"] == ["+15005550006"]
    assert form["Body"] == ["Hello"] and form["ValidityPeriod"] == ["600"]
    assert form["StatusCallback"] == ["https://sms.example.com/webhooks/twilio/status/msg-1"]
    assert form["Attempt"] == ["1"]
    assert result.provider_message_id == "SM" + "b" * 32
    assert (result.status, result.num_segments, result.attempts) == (MessageStatus.QUEUED, 2, 1)


@responses.activate
def test_send_mms_through_messaging_service(provider: TwilioProvider) -> None:
    responses.post(MESSAGES, json=_created("accepted", "MM" + "c" * 32), status=201)
    media = ("https://cdn.example.com/a.png", "https://cdn.example.com/b.jpg")
    result = provider.send(_request(from_number=None, messaging_service_id="MG" + "d" * 32,
                                    body="", media_urls=media))  # fmt: skip
    form = _form(responses.calls[0])
    assert form["MediaUrl"] == list(media)
    assert form["MessagingServiceSid"] == ["MG" + "d" * 32] and "From" not in form
    assert "Body" not in form
    assert result.status is MessageStatus.ACCEPTED


@responses.activate
def test_no_status_callback_without_public_url(sleeps: Sleeps) -> None:
    responses.post(MESSAGES, json=_created(), status=201)
    TwilioProvider(SID, "token", sleep=sleeps).send(_request())
    assert "StatusCallback" not in _form(responses.calls[0])


@responses.activate
def test_429_is_retried_with_backoff_and_then_succeeds(
    provider: TwilioProvider, sleeps: Sleeps
) -> None:
    responses.post(MESSAGES, json=_error(20429, 429, "Too Many Requests"), status=429)
    responses.post(MESSAGES, json=_error(20429, 429, "Too Many Requests"), status=429)
    responses.post(MESSAGES, json=_created(), status=201)
    result = provider.send(_request())
    assert len(responses.calls) == 3 and result.attempts == 3
    assert len(sleeps) == 2 and all(s > 0 for s in sleeps)
    assert [_form(c)["Attempt"] for c in responses.calls] == [["1"], ["2"], ["3"]]


@responses.activate
def test_retry_after_header_sets_the_pause(provider: TwilioProvider, sleeps: Sleeps) -> None:
    responses.post(MESSAGES, json=_error(20429, 429), status=429, headers={"Retry-After": "7"})
    responses.post(MESSAGES, json=_created(), status=201)
    provider.send(_request())
    assert sleeps == [7.0]


@responses.activate
def test_persistent_429_gives_up_with_throttled_error(
    provider: TwilioProvider, sleeps: Sleeps
) -> None:
    responses.post(MESSAGES, json=_error(20429, 429), status=429)
    with pytest.raises(ProviderThrottledError) as caught:
        provider.send(_request())
    assert len(responses.calls) == 4 and len(sleeps) == 3
    assert caught.value.transient and caught.value.provider_code == 20429


@responses.activate
def test_5xx_is_retried(provider: TwilioProvider) -> None:
    responses.post(MESSAGES, body="Service Unavailable", status=503)
    responses.post(MESSAGES, json=_created(), status=201)
    assert provider.send(_request()).attempts == 2


@responses.activate
def test_network_failure_is_retried_then_reported_transient(
    provider: TwilioProvider,
) -> None:
    responses.post(MESSAGES, body=requests.ConnectionError("connection refused"))
    with pytest.raises(ProviderError) as caught:
        provider.send(_request())
    assert len(responses.calls) == 4
    assert caught.value.transient and caught.value.category == "provider_unavailable"


@responses.activate
def test_invalid_number_21211_is_not_retried(provider: TwilioProvider, sleeps: Sleeps) -> None:
    responses.post(MESSAGES, json=_error(21211, 400, "The 'To' number 123 is not valid."),
                   status=400)  # fmt: skip
    with pytest.raises(ProviderError) as caught:
        provider.send(_request())
    assert len(responses.calls) == 1 and sleeps == []
    exc = caught.value
    assert (exc.category, exc.transient, exc.http_status) == ("invalid_recipient", False, 400)
    assert exc.provider_message == "The 'To' number 123 is not valid."


@responses.activate
def test_opted_out_21610_is_not_retried(provider: TwilioProvider, sleeps: Sleeps) -> None:
    responses.post(MESSAGES, json=_error(21610, 400, "Attempt to send to unsubscribed recipient"),
                   status=400)  # fmt: skip
    with pytest.raises(RecipientOptedOutError):
        provider.send(_request())
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_rfc9457_error_body_is_mapped_too(provider: TwilioProvider) -> None:
    body = {"type": "https://www.twilio.com/docs/errors/21211", "title": "Invalid To",
            "status": 400, "code": 21211, "detail": "bad number"}  # fmt: skip
    responses.post(MESSAGES, json=body, status=400)
    with pytest.raises(ProviderError) as caught:
        provider.send(_request())
    assert caught.value.category == "invalid_recipient"
    assert caught.value.provider_message == "bad number"


@responses.activate
def test_credentials_of_a_full_active_account_are_ok(provider: TwilioProvider) -> None:
    responses.get(f"{API}.json", json={"sid": SID, "status": "active", "type": "Full",
                                       "friendly_name": "Contoso"})  # fmt: skip
    report = provider.validate_credentials()
    assert report.ok and report.warnings == () and report.friendly_name == "Contoso"


@responses.activate
def test_trial_account_is_ok_with_a_warning(provider: TwilioProvider) -> None:
    responses.get(f"{API}.json", json={"sid": SID, "status": "active", "type": "Trial"})
    report = provider.validate_credentials()
    assert report.ok and report.warnings == (TRIAL_WARNING,)


@responses.activate
def test_suspended_account_is_not_ok(provider: TwilioProvider) -> None:
    responses.get(f"{API}.json", json={"sid": SID, "status": "suspended", "type": "Full"})
    report = provider.validate_credentials()
    assert not report.ok and report.problem == "The Twilio account is suspended."


@responses.activate
def test_bad_credentials_are_reported_not_raised(provider: TwilioProvider) -> None:
    responses.get(f"{API}.json", json=_error(20003, 401, "Authenticate"), status=401)
    report = provider.validate_credentials()
    assert not report.ok
    assert report.problem == "SMS provider credentials are invalid. (20003)"
    assert "token" not in json.dumps(report.__repr__())


def test_send_request_rejects_ambiguous_or_empty_messages() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _request(messaging_service_id="MG" + "d" * 32)
    with pytest.raises(ValueError, match="body or media"):
        _request(body="")
    with pytest.raises(ValueError, match="validity"):
        _request(validity_period_s=36001)
    with pytest.raises(ValueError, match="10 media"):
        _request(media_urls=tuple(f"https://x/{i}" for i in range(11)))


def test_built_from_settings_in_local_mode_uses_the_simulator_credentials() -> None:
    from connector.providers.twilio.client import build_twilio_provider
    from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID
    from connector.settings import load_settings

    settings = load_settings({"CONNECTOR_PUBLIC_BASE_URL": "https://sms.example.com/"})
    provider = build_twilio_provider(settings, api_base_url="http://127.0.0.1:8099")
    assert provider.account_sid == LOCAL_ACCOUNT_SID
    assert provider.public_base_url == "https://sms.example.com"


def test_built_from_settings_outside_local_mode_needs_credentials() -> None:
    from connector.errors import ConfigurationError
    from connector.providers.twilio.client import build_twilio_provider
    from connector.settings import load_settings

    env = {"CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
           "CONNECTOR_DATAVERSE__TOKEN": "t"}  # fmt: skip
    with pytest.raises(ConfigurationError, match="ACCOUNT_SID"):
        build_twilio_provider(load_settings(env))
    env |= {"CONNECTOR_TWILIO__ACCOUNT_SID": SID, "CONNECTOR_TWILIO__AUTH_TOKEN": "tok"}
    assert build_twilio_provider(load_settings(env)).account_sid == SID


@responses.activate
def test_built_from_settings_sends_to_the_configured_api_base_url() -> None:
    from connector.providers.twilio.client import build_twilio_provider
    from connector.settings import load_settings

    env = {"CONNECTOR_TWILIO__ACCOUNT_SID": SID, "CONNECTOR_TWILIO__AUTH_TOKEN": "tok",
           "CONNECTOR_TWILIO__API_BASE_URL": "http://sim.local:8099"}  # fmt: skip
    responses.post(f"http://sim.local:8099/2010-04-01/Accounts/{SID}/Messages.json",
                   json=_created(), status=201)  # fmt: skip
    build_twilio_provider(load_settings(env)).send(_request())
    url = responses.calls[0].request.url
    assert url is not None and url.startswith("http://sim.local:8099/")
