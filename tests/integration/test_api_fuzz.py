"""Property test of the whole HTTP API against its own ``/openapi.json`` (schemathesis).

The app is the real wired one (``connector.bootstrap.build``) served by uvicorn on loopback,
over the Dataverse emulator (schema installed, demo rows seeded) and the Twilio simulator,
with an API key, the same parts as ``test_webhook_emulator``'s stack. Every operation in the
document is exercised (none is excluded): schemathesis' examples, coverage and fuzzing
phases, a bounded number of examples, derandomized with a fixed seed so a run is repeatable.

Two properties hold for every request, valid or not:

- no answer is a 5xx (a bad request is the caller's fault: a 4xx);
- every 4xx/5xx answer is ``application/problem+json`` (RFC 9457) with the house fields.

Operations that cannot be exercised past their gate, and why that is still worth checking:

- ``receiveProviderWebhook`` and ``receiveStatusCallback`` need a provider signature
  (``X-Twilio-Signature`` over the public URL and the form) that generated requests cannot
  forge: they answer 403 (or 404 for an unknown provider, 413 past the body bound, 422 for
  a form that is not one), and those answers are checked for problem+json like any other.
- ``receiveDataverseWebhook`` needs a registered service-endpoint key (none is registered
  here): it answers 401, checked the same way.

Generated ids name no row, so hooks give half the cases the stack's real ids (``KNOWN``):
both the "unknown id" answers and the services behind them are exercised. Regressions the
fuzzing found keep a test of their own where the bug was (see each fix's commit).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis import Case, CheckContext, HookContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.openapi import from_dict

from connector.api.app import create_app
from connector.api.problems import PROBLEM_JSON
from connector.bootstrap import build
from connector.bootstrap.local_mode import (
    DEMO_CUSTOMER,
    DEMO_ROWS,
    DEMO_SENDER,
    DEMO_TEMPLATES,
    seed_demo,
)
from connector.bootstrap.server_thread import running
from connector.dataverse.connect import build_client
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, TWILIO_INBOUND_PATH
from connector.settings import load_settings
from connector.testing.shared_emulator import SharedEmulator
from connector.testing.signing import inbound_fields, signed_form

PUBLIC = "https://sms.example.com"
API_KEY = "fuzz-api-key-123"
TOKEN = "0123456789abcdef0123456789abcdef"
ALICE_ID = next(r.id for r in DEMO_ROWS if r.body.get("firstname") == "Alice")
SEED = 15
MAX_EXAMPLES = 30  # fuzzing-phase examples per operation; examples and coverage come on top

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        # Webhooks of an unknown provider only 404: name the real one, so that every generated
        # webhook reaches the signature check (and answers 403 problem+json).
        "parameters": {"path.provider": "twilio"},
    }
)


def problem_json_errors(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every 4xx/5xx answer is problem+json with the house fields, its status among them."""
    del ctx, case
    if response.status_code < 400:
        return None
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert media_type == PROBLEM_JSON, f"{response.status_code} answered as {media_type!r}"
    body = response.json()
    assert isinstance(body, dict), body
    missing = {"type", "title", "status", "code"} - set(body)
    assert not missing, f"problem without {sorted(missing)}: {body}"
    assert body["status"] == response.status_code, body
    return None


@dataclass(frozen=True)
class Api:
    """The wired app's base URL and a keep-alive session to it."""

    url: str
    session: requests.Session


# The document is the one the app serves: :func:`create_app` includes every route whatever
# was wired (the fixture checks that the running app's ``/openapi.json`` is this one).
DOCUMENT = create_app().openapi()
schema = from_dict(DOCUMENT, config=CONFIG)

KNOWN: dict[str, Any] = {
    "template_id": DEMO_TEMPLATES[0][0],
    "regarding": {"table": "contact", "id": ALICE_ID},
    "to": DEMO_CUSTOMER,
    "phone": DEMO_CUSTOMER,
}
"""Real ids and numbers of the wired stack, by field name (the fixture adds the sender's
configuration, the session an inbound SMS opened and a queued send's message id): random
GUIDs name no row, so half the generated bodies, paths and queries get these instead and go
past the "unknown" answers into the services."""


def with_known(values: Any) -> Any:
    """``values`` with every field of a known name set to the stack's real value."""
    if not isinstance(values, dict):
        return values
    return {k: KNOWN.get(k, v) for k, v in values.items()}


@schema.hook
def flatmap_body(_context: HookContext, body: Any) -> SearchStrategy[Any]:
    return st.sampled_from([body, with_known(body)])


@schema.hook
def flatmap_path_parameters(
    _context: HookContext, path_parameters: dict[str, Any]
) -> SearchStrategy[Any]:
    return st.sampled_from([path_parameters, with_known(path_parameters)])


@schema.hook
def flatmap_query(_context: HookContext, query: dict[str, Any]) -> SearchStrategy[Any]:
    return st.sampled_from([query, with_known(query)])


def inbound_sms(url: str) -> None:
    """One signed inbound SMS from the demo customer (it makes a session and a message)."""
    fields = inbound_fields(DEMO_CUSTOMER, DEMO_SENDER, "hello", account_sid=LOCAL_ACCOUNT_SID)
    signed = signed_form(PUBLIC + TWILIO_INBOUND_PATH, fields, TOKEN)
    answer = requests.post(
        url + TWILIO_INBOUND_PATH, data=signed.body, headers=signed.headers, timeout=10
    )
    assert answer.status_code == 200, answer.text


def queued_send(url: str) -> str:
    """The id of a send to the demo customer, queued (no worker sends it)."""
    body = {"to": DEMO_CUSTOMER, "body": "hi", "configuration_id": KNOWN["configuration_id"]}
    answer = requests.post(
        f"{url}/api/v1/messages", json=body, headers={"X-API-Key": API_KEY}, timeout=10
    )
    assert answer.status_code == 202, answer.text
    message_id: str = answer.json()["id"]
    return message_id


@pytest.fixture(scope="module")
def api(shared_emulator: SharedEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The wired app on loopback: emulator with the schema and demo rows, Twilio simulator,
    one inbound conversation and one queued send (no worker runs: sends stay queued)."""
    shared_emulator.restore_installed()
    state = tmp_path_factory.mktemp("fuzz") / "state.db"
    engine = SimulatorEngine(SimulatorOptions(auth_token=TOKEN))
    with running(create_simulator_app(engine)) as simulator:
        settings = load_settings(
            env={
                "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
                "CONNECTOR_STATE__URL": f"sqlite:///{state}",
                "CONNECTOR_DATAVERSE__URL": shared_emulator.url,
                "CONNECTOR_DATAVERSE__TOKEN": "emulator",
                "CONNECTOR_API__KEYS": API_KEY,
                "CONNECTOR_SECRET_KEYS": Fernet.generate_key().decode(),  # subscriptions
                "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
                "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
                "CONNECTOR_TWILIO__API_BASE_URL": simulator,
            }
        )
        client = build_client(settings.dataverse)
        KNOWN["configuration_id"] = seed_demo(client, PUBLIC)
        connector = build(settings, dataverse=client)
        connector.phone_sync.run(full=True)
        try:
            with running(connector.app) as url, requests.Session() as session:
                served = session.get(f"{url}/openapi.json", timeout=10)
                assert served.json() == DOCUMENT
                inbound_sms(url)
                assert connector.drain.drain().failed == 0
                (inbound,) = client.query("smsc_messages")
                KNOWN["session_id"] = inbound["_smsc_sessionid_value"]
                KNOWN["message_id"] = queued_send(url)
                yield Api(url, session)
        finally:
            connector.close()
            client.api.close()


@pytest.mark.slow
@schema.parametrize()
def test_no_server_errors_and_every_error_is_problem_json(case: Case[Any], api: Api) -> None:
    case.call_and_validate(
        base_url=api.url,
        session=api.session,
        headers={"X-API-Key": API_KEY},
        checks=[not_a_server_error, problem_json_errors],
    )
