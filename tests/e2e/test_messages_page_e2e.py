"""The messages page in a real browser: Playwright driving Debian's Chromium (launched by its
executable path, no browser download) against ``connector serve`` as a subprocess, with the
Dataverse emulator and the Twilio simulator on loopback.

The issue's scenario: an inbound message appears bold in the inbox (the list polls every
second) -> opening it makes it read -> a reply with a template (preview and segment count
shown) -> "Delivered" under the reply -> archive -> the customer's reply brings it back
unread -> the thread downloads as CSV -> a lead is created from an unknown number's
conversation -> a conversation is moved to another contact. axe-core runs in the page (no
serious or critical violations). Screenshots of the inbox and a thread are saved as test
artefacts (``SCREENSHOTS_DIR``, default ``test-artifacts/page/``); ``make screenshots``
writes the README's copies.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_SENDER
from connector.emulators.twilio.engine import SimulatorEngine
from connector.testing.signing import inbound_fields, signed_form
from tests.e2e.conftest import Emulator
from tests.e2e.test_inbound_e2e import TOKEN, stop
from tests.e2e.test_outbound_e2e import KEY, _free_port, outbound_env, serve_on, simulator

__all__ = ["simulator"]  # the simulator fixture, shared with the outbound e2e tests

UNKNOWN = "+14155550177"
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the machine has no network beyond loopback
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000  # how long the browser waits for something to appear (no timed assertion)
expect.set_options(timeout=WAIT_MS)  # assertions wait as long as actions do


def chromium_path() -> str:
    """Debian's Chromium (``scripts/ensure-test-services.sh`` installs it)."""
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: scripts/ensure-test-services.sh installs it")
    pytest.skip("Chromium is not installed (apt-get install chromium, or make test)")


def screenshots_dir() -> Path:
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or "test-artifacts/page")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def inbound(base: str, frm: str, body: str) -> None:
    fields = inbound_fields(frm, DEMO_SENDER, body)
    signed = signed_form(f"{base}/webhooks/twilio/messages", fields, TOKEN)
    answer = requests.post(
        f"{base}/webhooks/twilio/messages", data=signed.body, headers=signed.headers, timeout=10
    )
    assert answer.status_code == 200, answer.text


def check_accessibility(page: Page) -> None:
    results = Axe().run(page)
    bad = [
        v["id"]
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
    assert bad == [], results.generate_report()


def sign_in(page: Page, base: str) -> None:
    page.goto(base + "/")
    page.get_by_label("API key").fill("wrong key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Messages")).to_be_visible()


def read_and_reply(page: Page, base: str, shots: Path) -> None:
    inbound(base, DEMO_CUSTOMER, "Hi, is my order ready? <b>now</b>")
    alice = page.locator(".conversations li.unread", has_text="Alice Nguyen")
    expect(alice).to_be_visible()  # the list polls: no reload
    alice.get_by_role("link").click()
    expect(page.locator("#thread h2")).to_have_text("Alice Nguyen")
    expect(page.locator(".msg.inbound .body")).to_have_text("Hi, is my order ready? <b>now</b>")
    expect(page.locator(".conversations li.read", has_text="Alice Nguyen")).to_be_visible()
    page.get_by_label("Template").select_option(label="Appointment reminder")
    expect(page.locator("#preview")).to_contain_text("Hi Alice, see you tomorrow.")
    expect(page.locator("#preview")).to_contain_text("1 segment")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".notice")).to_contain_text("Reply queued")
    expect(page.locator(".msg.outbound .status")).to_have_text("Delivered")
    check_accessibility(page)
    page.screenshot(path=str(shots / "thread.png"))


def archive_and_come_back(page: Page, base: str) -> None:
    page.get_by_role("button", name="Archive").click()
    expect(page.locator(".notice")).to_contain_text("Archived")
    expect(page.locator(".conversations li", has_text="Alice Nguyen")).to_have_count(0)
    inbound(base, DEMO_CUSTOMER, "Thanks! See you then.")
    expect(page.locator(".conversations li.unread", has_text="Alice Nguyen")).to_be_visible()


def download_thread(page: Page) -> None:
    with page.expect_download() as download_info:
        page.locator(".actions").get_by_role("link", name="Download").click()
    saved = download_info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(saved).read_text(encoding="utf-8-sig"))))
    bodies = [r["Message"] for r in rows]
    assert "Hi, is my order ready? <b>now</b>" in bodies
    assert "Hi Alice, see you tomorrow." in bodies
    assert {r["Direction"] for r in rows} >= {"Inbound", "Outbound"}


def create_lead_then_move(page: Page, base: str) -> None:
    inbound(base, UNKNOWN, "Hello, who is this? \u05e9\u05dc\u05d5\u05dd \U0001f44b")
    stranger = page.locator(".conversations li", has_text=UNKNOWN).first
    expect(stranger).to_be_visible()
    stranger.get_by_role("link").click()
    expect(page.locator("#thread h2")).to_have_text(UNKNOWN)
    page.get_by_text("Assign, move, create a record").click()
    page.get_by_label("First name").fill("Erin")
    page.get_by_label("Last name").fill("Walsh")
    page.get_by_label("Email").fill("erin@example.com")
    page.get_by_role("button", name="Create and link").click()
    expect(page.locator(".notice")).to_contain_text("Created lead Erin Walsh")
    page.get_by_text("Assign, move, create a record").click()
    page.get_by_label("Move to another record: search by name or number").fill("Bob")
    page.get_by_label("Bob Smith (contact", exact=False).check()
    page.get_by_role("button", name="Move").click()
    expect(page.locator(".notice")).to_contain_text("Moved to the contact")
    expect(page.locator(".conversations li", has_text="Bob Smith")).to_be_visible()


def phone_width(page: Page, base: str) -> None:
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(base + "/messages")
    expect(page.locator(".conversations li").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_agent_works_a_conversation_in_the_browser(
    tmp_path: Path,
    emulator: Emulator,
    simulator: tuple[SimulatorEngine, str],
    browser: Browser,
) -> None:
    _, simulator_url = simulator
    port = _free_port()
    env = outbound_env(tmp_path, emulator, simulator_url, port)
    process, base = serve_on(port, tmp_path, env)
    shots = screenshots_dir()
    try:
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, accept_downloads=True
        )
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        sign_in(page, base)
        read_and_reply(page, base, shots)
        archive_and_come_back(page, base)
        download_thread(page)
        create_lead_then_move(page, base)
        page.goto(base + "/messages")
        expect(page.locator(".conversations li").first).to_be_visible()
        check_accessibility(page)
        page.screenshot(path=str(shots / "inbox.png"))
        phone_width(context.new_page(), base)
        context.close()
    finally:
        stop(process)
