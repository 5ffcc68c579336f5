"""Sign in with Microsoft on the messages page, in a real browser and over HTTP.

Chromium (Playwright) follows the real OIDC authorization-code flow with PKCE: the connector
(served on loopback, in process) sends it to the emulator's authorize endpoint over HTTPS
(MSAL insists on an https authority), where the user is chosen in the stand-in sign-in
form; the code comes back to the connector, which redeems it with MSAL and checks the user's
access token with the API's own checks. The session actions then act as that user: an agent
who does not own the conversation is refused with a clear message and nothing changes in
Dataverse; its owner accepts it, and the emulator's record of the write names the owner.
The emulator's Dataverse and published keys run on a plain-HTTP twin sharing the same token
service (same keys).
"""

from __future__ import annotations

import html
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from connector.bootstrap import build
from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_SENDER, seed_demo
from connector.bootstrap.root import Connector
from connector.bootstrap.server_thread import running
from connector.dataverse.client import DataverseClient
from connector.dataverse.connect import build_client
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.tls import make_certificate, running_tls
from connector.emulators.dataverse.token_service import TokenService
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID
from connector.settings import load_settings
from connector.testing.signing import inbound_fields, signed_form
from tests.e2e.test_messages_page_e2e import browser

__all__ = ["browser"]  # the Chromium fixture, shared with the messages page e2e test

TENANT = "11111111-2222-3333-4444-555555555555"
API_AUDIENCE = "aaaaaaaa-0000-0000-0000-000000000001"
PAGE_CLIENT = "bbbbbbbb-0000-0000-0000-000000000002"
PAGE_SECRET = "page-client-secret"
OWNER_OID = "0f0f0f0f-1111-2222-3333-000000000001"
OTHER_OID = "0f0f0f0f-1111-2222-3333-000000000002"
STRANGER_OID = "0f0f0f0f-1111-2222-3333-000000000009"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
INBOUND = "/webhooks/twilio/messages"


@dataclass
class SignInStack:
    url: str
    authority: str
    emulator: str
    certfile: Path
    client: DataverseClient
    connector: Connector

    def inbound(self, body: str) -> None:
        fields = inbound_fields(DEMO_CUSTOMER, DEMO_SENDER, body, account_sid=LOCAL_ACCOUNT_SID)
        signed = signed_form(self.url + INBOUND, fields, TWILIO_TOKEN)
        answer = requests.post(
            self.url + INBOUND,
            data=signed.body,
            headers=signed.headers,
            timeout=10,
            verify=str(self.certfile),
        )
        assert answer.status_code == 200, answer.text

    def callers(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = requests.get(
            f"{self.emulator}/_emulator/callers", timeout=10
        ).json()
        return found

    def session_row(self, session_id: str) -> dict[str, Any]:
        row = self.client.retrieve("smsc_sessions", session_id)
        return {k: v for k, v in row.items() if not k.startswith("@")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SignInStack]:
    certfile, keyfile = make_certificate(tmp_path)
    # MSAL's requests honour REQUESTS_CA_BUNDLE: trust the emulator's certificate for this test
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certfile))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(certfile))
    tokens = TokenService(clients={PAGE_CLIENT: PAGE_SECRET})
    engine = SimulatorEngine(SimulatorOptions(auth_token=TWILIO_TOKEN))
    port = _free_port()
    public = f"https://127.0.0.1:{port}"  # the flow cookie is Secure; Entra wants https too
    with (
        running(create_emulator_app(tokens=tokens)) as emulator,
        running_tls(create_emulator_app(tokens=tokens), certfile, keyfile) as authority,
        running(create_simulator_app(engine)) as simulator,
    ):
        settings = load_settings(
            env={
                "CONNECTOR_PUBLIC_BASE_URL": public,
                "CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}",
                "CONNECTOR_DATAVERSE__URL": emulator,
                "CONNECTOR_DATAVERSE__TOKEN": "emulator",
                "CONNECTOR_API__KEYS": "page-test-api-key",
                "CONNECTOR_API__ENTRA_ISSUER": f"{authority}/{TENANT}/v2.0",
                "CONNECTOR_API__ENTRA_AUDIENCE": API_AUDIENCE,
                "CONNECTOR_API__ENTRA_JWKS_URL": f"{emulator}/{TENANT}/discovery/v2.0/keys",
                "CONNECTOR_API__ENTRA_CLIENT_ID": PAGE_CLIENT,
                "CONNECTOR_API__ENTRA_CLIENT_SECRET": PAGE_SECRET,
                "CONNECTOR_TWILIO__AUTH_TOKEN": TWILIO_TOKEN,
                "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
                "CONNECTOR_TWILIO__API_BASE_URL": simulator,
            }
        )
        client = build_client(settings.dataverse)
        seed_demo(client, public)
        connector = build(settings, dataverse=client)
        connector.phone_sync.run(full=True)
        connector.start_worker(threads=2, periodic=False)
        with running_tls(connector.app, certfile, keyfile, port=port) as url:
            yield SignInStack(url, authority, emulator, certfile, client, connector)
        connector.close()
        client.api.close()


def _conversation(stack: SignInStack) -> tuple[str, str]:
    """Alice's conversation (session id) and its owner, who gets ``OWNER_OID``; and another
    agent of the environment with ``OTHER_OID``."""
    stack.inbound("Is my order ready?")
    deadline = time.monotonic() + 30
    while stack.connector.journal.counts().done < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    (message,) = stack.client.query("smsc_messages")
    session_id = str(message["_smsc_sessionid_value"])
    owner = str(stack.client.retrieve("smsc_sessions", session_id)["_ownerid_value"])
    stack.client.update("systemusers", owner, {"azureactivedirectoryobjectid": OWNER_OID})
    stack.client.create(
        "systemusers",
        {
            "firstname": "Olga",
            "lastname": "Other",
            "azureactivedirectoryobjectid": OTHER_OID,
            "isdisabled": False,
        },
    )
    return session_id, owner


def _sign_in_with_microsoft(page: Page, base: str, object_id: str) -> None:
    page.goto(base + "/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.get_by_label("Entra object id of the user").fill(object_id)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Messages", exact=True)).to_be_visible()


def _open_alice(page: Page) -> None:
    page.locator(".conversations li", has_text="Alice Nguyen").get_by_role("link").click()
    expect(page.locator("#thread h2")).to_have_text("Alice Nguyen")
    expect(page.locator(".conversations li.read", has_text="Alice Nguyen")).to_be_visible()


def _accept(page: Page) -> None:
    page.locator(".actions").get_by_role("button", name="Accept").click()


def test_microsoft_users_act_as_themselves_on_the_page(
    stack: SignInStack, browser: Browser
) -> None:
    session_id, owner = _conversation(stack)
    context = browser.new_context(ignore_https_errors=True)  # the emulator's own certificate
    page = context.new_page()

    _sign_in_with_microsoft(page, stack.url, OTHER_OID)
    _open_alice(page)  # reading is the connector's own write (as for the API's reads)
    before = stack.session_row(session_id)
    _accept(page)
    expect(page.locator(".notice")).to_contain_text("does not allow you")
    assert stack.session_row(session_id) == before
    assert stack.callers() == []  # nothing was written on Olga's behalf

    page.get_by_role("button", name="Sign out").click()
    _sign_in_with_microsoft(page, stack.url, OWNER_OID)
    _open_alice(page)
    _accept(page)
    expect(page.locator(".notice")).to_contain_text("Accepted")
    accepted = stack.session_row(session_id)
    assert accepted["smsc_acceptance"] != before["smsc_acceptance"]
    callers = stack.callers()
    assert callers and {c["caller"] for c in callers} == {owner}
    assert any(c["record_id"] == session_id for c in callers)
    context.close()


def _posted_back(page: requests.Response) -> tuple[str, dict[str, str]]:
    """The emulator's form_post page: where it posts, and the fields (code, state...)."""
    action = re.search(r'action="([^"]+)"', page.text)
    assert action is not None, page.text
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}


def _choose_user(
    stack: SignInStack, http: requests.Session, object_id: str
) -> tuple[str, dict[str, str]]:
    """The browser's part without a browser: start, choose the user at the authority."""
    start = http.get(stack.url + "/signin/microsoft", allow_redirects=False, timeout=10)
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(f"{stack.authority}/{TENANT}/oauth2/v2.0/authorize?")
    assert "code_challenge_method=S256" in authorize
    assert "response_mode=form_post" in authorize
    assert re.search(r"scope=[^&]*api%3A%2F%2F" + API_AUDIENCE, authorize)
    chosen = http.get(authorize + f"&oid={object_id}", timeout=10)
    assert chosen.status_code == 200, chosen.text
    action, fields = _posted_back(chosen)
    assert action == stack.url + "/signin/microsoft/callback"
    assert fields["code"]
    return action, fields


def test_sign_in_refusals_over_http(stack: SignInStack) -> None:
    _conversation(stack)
    with requests.Session() as http:
        action, fields = _choose_user(stack, http, STRANGER_OID)
        unknown = http.post(action, data=fields, timeout=10)
        assert unknown.status_code == 401
        assert "not a user of this Dataverse environment" in unknown.text
        assert "connector_page" not in http.cookies

    with requests.Session() as http:
        action, fields = _choose_user(stack, http, OWNER_OID)
        signed_in = http.post(action, data=fields, timeout=10)
        assert signed_in.status_code == 200, signed_in.text
        assert "connector_page" in http.cookies
        messages = http.get(stack.url + "/messages", timeout=10)
        assert messages.status_code == 200
        assert messages.url.endswith("/messages")  # not sent back to sign in
        again = http.post(action, data=fields, timeout=10)  # the flow is spent
        assert again.status_code == 400

    with requests.Session() as http:  # a callback without its flow, or with a forged state
        action, fields = _choose_user(stack, http, OWNER_OID)
        stray = requests.post(action, data=fields, timeout=10)
        assert stray.status_code == 400
        assert "did not start here" in stray.text
        forged = http.post(action, data={**fields, "state": "forged"}, timeout=10)
        assert forged.status_code == 401
        assert "connector_page" not in http.cookies
