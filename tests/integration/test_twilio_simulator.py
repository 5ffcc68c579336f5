"""The real TwilioProvider and the real twilio SDK against the simulator over HTTP on
127.0.0.1: sends, refusals for Twilio's magic numbers, retries, paging, credentials, and
status callbacks / inbound webhooks that verify with the connector's own signature check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from fastapi import FastAPI, Request, Response

from connector.bootstrap.server_thread import running
from connector.domain.provider_messages import SendRequest
from connector.domain.status import MessageStatus, advance
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.errors import (
    ProviderError,
    ProviderThrottledError,
    RecipientOptedOutError,
    SignatureError,
)
from connector.providers.twilio.client import TRIAL_WARNING, TwilioProvider
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.providers.webhooks import public_url
from connector.testing.app_slot import SharedServer

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
FROM = "+15005550006"


@dataclass
class Receiver:
    """A tiny connector stand-in: verifies every webhook with our check, records it."""

    verifier: TwilioProvider
    base_url: str = ""
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    inbound: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        async def checked(request: Request) -> list[tuple[str, str]] | None:
            form = await request.form()
            pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
            url = public_url(self.base_url, request.url.path, request.url.query)
            try:
                self.verifier.verify_signature(url, pairs, request.headers)
            except SignatureError as exc:
                self.rejected.append(exc.details["reason"])
                return None
            return pairs

        @app.post("/webhooks/twilio/status/{message_id}")
        async def status(message_id: str, request: Request) -> Response:
            pairs = await checked(request)
            if pairs is None:
                return Response(status_code=403)
            update = self.verifier.parse_status(pairs)
            self.callbacks.append({"message_id": message_id, "update": update})
            return Response(status_code=200)

        @app.post("/webhooks/twilio/messages")
        async def inbound(request: Request) -> Response:
            pairs = await checked(request)
            if pairs is None:
                return Response(status_code=403)
            self.inbound.append({"message": self.verifier.parse_inbound(pairs)})
            return Response(EMPTY_TWIML, media_type="text/xml")

        return app


@dataclass
class World:
    engine: SimulatorEngine
    sim_url: str
    receiver: Receiver
    provider: TwilioProvider
    sleeps: list[float]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[SharedServer, SharedServer]]:
    """One simulator port and one receiver port for the module; each test plugs in new apps."""
    simulator, receiver = SharedServer(), SharedServer()
    yield simulator, receiver
    simulator.close()
    receiver.close()


@pytest.fixture
def world(servers: tuple[SharedServer, SharedServer]) -> Iterator[World]:
    engine = SimulatorEngine(SimulatorOptions())
    receiver = Receiver(TwilioProvider(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN))
    sleeps: list[float] = []
    sim_server, receiver_server = servers
    with (
        sim_server.serving(create_simulator_app(engine)) as sim_url,
        receiver_server.serving(receiver.app()) as base,
    ):
        receiver.base_url = base
        engine.options.inbound_url = base + "/webhooks/twilio/messages"
        provider = TwilioProvider(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, public_base_url=base,
                                  api_base_url=sim_url, sleep=sleeps.append)  # fmt: skip
        yield World(engine, sim_url, receiver, provider, sleeps)
        engine.close()


def _send(world: World, to: str = "+14155550100", **kw: Any) -> Any:
    values: dict[str, Any] = {"message_id": "msg-1", "to": to, "body": "Hello", "from_number": FROM}
    values.update(kw)
    return world.provider.send(SendRequest(**values))


def _final(world: World, message_id: str) -> MessageStatus | None:
    status = None
    for cb in world.receiver.callbacks:
        if cb["message_id"] == message_id:
            status = advance(status, cb["update"].status)
    return status


def test_send_through_simulator_and_status_callbacks_verify(world: World) -> None:
    result = _send(world, message_id="order-42")
    assert result.status is MessageStatus.QUEUED and result.provider_message_id.startswith("SM")
    assert world.engine.wait_idle(10)
    got = [(c["message_id"], c["update"].status) for c in world.receiver.callbacks]
    assert got == [("order-42", MessageStatus.SENT), ("order-42", MessageStatus.DELIVERED)]
    assert world.receiver.rejected == []
    assert all(c["update"].provider_message_id == result.provider_message_id
               for c in world.receiver.callbacks)  # fmt: skip
    assert world.provider.fetch_status(result.provider_message_id) is MessageStatus.DELIVERED


def test_out_of_order_and_duplicate_callbacks_still_end_delivered(world: World) -> None:
    world.engine.options.out_of_order = True
    world.engine.options.duplicate = True
    _send(world, message_id="m-ooo")
    assert world.engine.wait_idle(10)
    arrived = [c["update"].status for c in world.receiver.callbacks]
    assert arrived == [MessageStatus.DELIVERED] * 2 + [MessageStatus.SENT] * 2
    assert _final(world, "m-ooo") is MessageStatus.DELIVERED


@pytest.mark.parametrize(
    ("to", "status", "code", "category"),
    [("+15005553003", MessageStatus.UNDELIVERED, "30003", "unreachable"),
     ("+15005553007", MessageStatus.UNDELIVERED, "30007", "carrier_filtered"),
     ("+15005553034", MessageStatus.FAILED, "30034", "configuration")],
)  # fmt: skip
def test_async_failures_arrive_with_twilio_error_codes(
    world: World, to: str, status: MessageStatus, code: str, category: str
) -> None:
    _send(world, to=to, message_id="m-fail")
    assert world.engine.wait_idle(10)
    last = world.receiver.callbacks[-1]["update"]
    assert (last.status, last.error_code) == (status, code)
    assert last.error is not None and last.error.category.value == category


@pytest.mark.parametrize(
    ("to", "from_", "code", "category"),
    [("+15005550001", FROM, 21211, "invalid_recipient"),
     ("+15005550002", FROM, 21612, "invalid_recipient"),
     ("+15005550003", FROM, 21408, "configuration"),
     ("+15005550004", FROM, 21610, "opted_out"),
     ("+15005550009", FROM, 21614, "invalid_recipient"),
     ("+14155550100", "+15005550001", 21212, "configuration"),
     ("+14155550100", "+15005550007", 21606, "configuration"),
     ("+14155550100", "+15005550008", 21611, "throttled")],
)  # fmt: skip
def test_magic_numbers_are_refused_with_twilio_codes_and_not_retried(
    world: World, to: str, from_: str, code: int, category: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        _send(world, to=to, from_number=from_)
    exc = caught.value
    assert (exc.provider_code, exc.category, exc.http_status) == (code, category, 400)
    assert isinstance(exc, RecipientOptedOutError) is (code == 21610)
    assert world.sleeps == [] and world.engine.list_messages() == []


def test_throttled_and_failing_requests_are_retried_over_http(world: World) -> None:
    world.engine.options.throttle_next = 2
    world.engine.options.fail_next = 1
    result = _send(world)
    assert result.attempts == 4 and len(world.sleeps) == 3
    assert len(world.engine.list_messages()) == 1


def test_mms_gets_an_mm_sid_and_media_count(world: World) -> None:
    media = ("https://cdn.example.com/a.png", "https://cdn.example.com/b.png")
    result = _send(world, body="", media_urls=media)
    assert result.provider_message_id.startswith("MM") and result.num_media == 2


def test_sdk_lists_messages_across_pages(world: World) -> None:
    for n in range(5):
        _send(world, message_id=f"m{n}", body=f"n{n}")
    client = world.provider._client
    listed = list(client.messages.list(page_size=2))
    assert [m.body for m in listed] == [f"n{n}" for n in reversed(range(5))]


def test_credentials_valid_and_trial_warned(world: World) -> None:
    assert world.provider.validate_credentials().ok
    world.engine.options.account_type = "Trial"
    report = world.provider.validate_credentials()
    assert report.ok and report.warnings == (TRIAL_WARNING,)


def test_wrong_auth_token_is_reported(world: World) -> None:
    bad = TwilioProvider(LOCAL_ACCOUNT_SID, "wrong", api_base_url=world.sim_url)
    report = bad.validate_credentials()
    assert not report.ok and "20003" in (report.problem or "")
    answer = requests.get(f"{world.sim_url}/2010-04-01/Accounts/{LOCAL_ACCOUNT_SID}.json",
                          auth=(LOCAL_ACCOUNT_SID, "wrong"), timeout=5)  # fmt: skip
    assert answer.status_code == 401 and answer.json()["code"] == 20003


def test_injected_inbound_is_signed_as_twilio_signs_it(world: World) -> None:
    answer = requests.post(f"{world.sim_url}/_simulator/inbound", timeout=10, json={
        "from": "+14155550199", "to": "+15005550006", "body": "Hi 👋",
        "media": ["https://example.com/cat.jpg"]})  # fmt: skip
    assert answer.status_code == 200
    result = answer.json()
    assert result["status_code"] == 200 and result["body"] == EMPTY_TWIML
    message = world.receiver.inbound[0]["message"]
    assert (message.from_number, message.body) == ("+14155550199", "Hi 👋")
    assert message.provider_message_id == result["message_sid"]
    assert [m.content_type for m in message.media] == ["image/jpeg"]


def test_receiver_rejects_callbacks_signed_with_another_token(world: World) -> None:
    world.engine.options.auth_token = "someone-else"
    world.engine.options.account_sid = LOCAL_ACCOUNT_SID
    requests.post(f"{world.sim_url}/_simulator/inbound", timeout=10,
                  json={"from": "+14155550199", "to": FROM, "body": "x"})  # fmt: skip
    assert world.receiver.rejected == ["mismatch"] and world.receiver.inbound == []


def test_receiver_behind_a_proxy_checks_the_public_url_not_the_socket(world: World) -> None:
    world.receiver.base_url = "https://sms.example.com"
    requests.post(f"{world.sim_url}/_simulator/inbound", timeout=10,
                  json={"from": "+14155550199", "to": FROM, "body": "x"})  # fmt: skip
    assert world.receiver.rejected == ["mismatch"]


def test_simulator_log_and_options_over_http(world: World) -> None:
    _send(world, message_id="m-log")
    requests.get(f"{world.sim_url}/_simulator/wait", params={"timeout": 5}, timeout=10)
    log = requests.get(f"{world.sim_url}/_simulator/messages", timeout=5).json()
    assert len(log["messages"]) == 1 and log["messages"][0]["status"] == "delivered"
    assert [d["http_status"] for d in log["deliveries"]] == [200, 200]
    assert "auth_token" not in log["options"]
    bad = requests.post(f"{world.sim_url}/_simulator/options", json={"nope": 1}, timeout=5)
    assert bad.status_code == 400


def test_auth_token_never_reaches_the_logs() -> None:
    import base64
    import io
    import logging

    from connector.log_config import configure_logging

    token = "tok-very-secret-4711"
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    configure_logging("DEBUG", "json", stream=buffer)
    engine = SimulatorEngine(SimulatorOptions(auth_token=token))
    try:
        with running(create_simulator_app(engine)) as sim_url:
            provider = TwilioProvider(
                LOCAL_ACCOUNT_SID, token, api_base_url=sim_url,
                public_base_url="http://127.0.0.1:9", sleep=lambda _: None,
            )  # fmt: skip
            provider.send(SendRequest(message_id="m", to="+14155550100", body="x",
                                      from_number=FROM))  # fmt: skip
            with pytest.raises(ProviderError):
                provider.send(SendRequest(message_id="m", to="+15005550001", body="x",
                                          from_number=FROM))  # fmt: skip
            provider.validate_credentials()
            assert engine.wait_idle(10)  # the callback to port 9 fails and is logged
        with pytest.raises(SignatureError):
            provider.verify_signature("https://x.example/hook", {"a": "b"},
                                      {"X-Twilio-Signature": "bad"})  # fmt: skip
    finally:
        engine.close()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    logged = buffer.getvalue()
    assert "simulator.callback_failed" in logged and "sms.sent" in logged
    basic = base64.b64encode(f"{LOCAL_ACCOUNT_SID}:{token}".encode()).decode()
    assert token not in logged and basic not in logged


def test_messaging_service_send_starts_accepted_and_can_report_initial_status(
    world: World,
) -> None:
    world.engine.options.initial_callback = True
    service = "MG" + "e" * 32
    result = _send(world, from_number=None, messaging_service_id=service, message_id="m-svc")
    assert result.status is MessageStatus.ACCEPTED and result.num_segments == 0
    assert world.engine.wait_idle(10)
    updates = [c["update"] for c in world.receiver.callbacks]
    assert [u.status for u in updates] == [
        MessageStatus.ACCEPTED, MessageStatus.SENT, MessageStatus.DELIVERED]  # fmt: skip
    assert all(u.raw["MessagingServiceSid"] == service for u in updates)
    assert updates[-1].carrier_done_date is not None


def test_reset_forgets_messages_and_deliveries(world: World) -> None:
    _send(world)
    answer = requests.post(f"{world.sim_url}/_simulator/reset", timeout=15).json()
    assert answer["messages"] == [] and answer["deliveries"] == []


def test_simulator_hosts_inbound_media_behind_basic_auth(world: World) -> None:
    import base64

    payload = b"\x89PNG fake image bytes"
    answer = requests.post(f"{world.sim_url}/_simulator/inbound", timeout=10, json={
        "from": "+14155550199", "to": FROM, "body": "",
        "media": [{"content_type": "image/png", "data_base64": base64.b64encode(payload).decode()},
                  {"content_type": "image/jpeg"}]})  # fmt: skip
    assert answer.status_code == 200
    media = world.receiver.inbound[0]["message"].media
    assert [m.content_type for m in media] == ["image/png", "image/jpeg"]
    assert media[0].url.startswith(f"{world.sim_url}/2010-04-01/Accounts/{LOCAL_ACCOUNT_SID}/")
    assert requests.get(media[0].url, timeout=5).status_code == 401
    got = requests.get(media[0].url, auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN), timeout=5)
    assert got.content == payload and got.headers["content-type"] == "image/png"
    placeholder = requests.get(media[1].url, auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN), timeout=5)
    assert placeholder.content.startswith(b"\x89PNG")
    missing = requests.get(media[0].url[:-5] + "00000", timeout=5,
                           auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN))  # fmt: skip
    assert missing.status_code == 404 and missing.json()["code"] == 20404
    bad = requests.post(f"{world.sim_url}/_simulator/inbound", timeout=10, json={
        "from": "+1", "to": FROM, "media": [{"data_base64": "%%%"}]})  # fmt: skip
    assert bad.status_code == 400


def test_sender_sending_faster_than_the_limit_gets_429_over_http(world: World) -> None:
    changed = requests.post(f"{world.sim_url}/_simulator/options",
                            json={"sender_rate_limit_mps": 0.5}, timeout=5)  # fmt: skip
    assert changed.json()["sender_rate_limit_mps"] == 0.5
    _send(world, message_id="m-1")
    _send(world, message_id="m-2")
    with pytest.raises(ProviderThrottledError) as caught:
        _send(world, message_id="m-3")
    assert caught.value.details["provider_code"] == 20429
    log = requests.get(f"{world.sim_url}/_simulator/messages", timeout=5).json()
    assert log["throttled"][FROM] == len(world.sleeps) + 1
    assert len(log["messages"]) == 2
