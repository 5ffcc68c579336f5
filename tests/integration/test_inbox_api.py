"""The conversation read API and the messages page over HTTP, against the emulator: folders
and threads within their Dataverse request budgets, marks written to the session activity,
records created from a conversation, problem+json errors; the page's sign-in, CSRF and
escaping of what customers send."""

from __future__ import annotations

import re
import uuid
from typing import Any

import requests

from connector.crm import tables
from tests.integration import test_webhook_emulator as emulator_stack
from tests.integration.test_webhook_emulator import API_KEY, Stack

stack = emulator_stack.stack  # the same fixture: connector, emulator and simulator on loopback

HEADERS = {"X-API-Key": API_KEY}


def _get(stack: Stack, path: str, **params: str) -> requests.Response:
    return requests.get(stack.url + path, params=params, headers=HEADERS, timeout=10)


def _post(stack: Stack, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.post(stack.url + path, json=body or {}, headers=HEADERS, timeout=10)


def _requests(stack: Stack) -> int:
    return int(stack.stats()["requests"])


def _session_row(stack: Stack, session_id: str) -> dict[str, Any]:
    return stack.client.retrieve("smsc_sessions", session_id)


def _one_conversation(stack: Stack, body: str = "Is my order ready?") -> str:
    stack.send(body)
    stack.wait_done(1)
    sessions = _get(stack, "/api/v1/sessions").json()["sessions"]
    assert len(sessions) == 1
    return str(sessions[0]["session_id"])


def test_inbox_lists_the_conversation_unread_with_the_contact_name_in_one_request(
    stack: Stack,
) -> None:
    session_id = _one_conversation(stack)
    before = _requests(stack)
    answer = _get(stack, "/api/v1/sessions", folder="inbox")
    assert _requests(stack) - before <= 1
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["sessions"]
    assert row["session_id"] == session_id
    assert row["name"] == "Alice Nguyen" and row["unread"] == 1
    assert row["folder"] == "inbox" and row["acceptance"] == "pending"
    assert (
        _get(stack, "/api/v1/sessions", q="alice").json()["sessions"][0]["name"] == "Alice Nguyen"
    )
    assert _get(stack, "/api/v1/sessions", q="555-0123").json()["sessions"]
    assert _get(stack, "/api/v1/sessions", q="Nobody like this").json()["sessions"] == []


def test_thread_costs_one_request_and_marks_are_written_to_dataverse(stack: Stack) -> None:
    session_id = _one_conversation(stack, "<script>alert(1)</script>")
    before = _requests(stack)
    thread = _get(stack, f"/api/v1/sessions/{session_id}/messages")
    assert _requests(stack) - before <= 1
    assert thread.status_code == 200, thread.text
    (message,) = thread.json()["messages"]
    assert message["body"] == "<script>alert(1)</script>"
    assert message["direction"] == "inbound" and message["status"] == "Received"

    read = _post(stack, f"/api/v1/sessions/{session_id}/read")
    assert read.json()["unread"] == 0
    assert _session_row(stack, session_id)[tables.SESSION_UNREAD] == 0
    archived = _post(stack, f"/api/v1/sessions/{session_id}/archive")
    assert archived.json()["folder"] == "archived"
    row = _session_row(stack, session_id)
    assert row[tables.SESSION_FOLDER] == tables.SESSION_FOLDER_OPTIONS[True]
    assert _get(stack, "/api/v1/sessions").json()["sessions"] == []
    assert len(_get(stack, "/api/v1/sessions", folder="archived").json()["sessions"]) == 1

    stack.send("Are you there?")  # a reply brings it back to the inbox, unread
    stack.wait_done(2)
    (back,) = _get(stack, "/api/v1/sessions").json()["sessions"]
    assert back["session_id"] == session_id and back["unread"] == 1
    unread = _post(stack, f"/api/v1/sessions/{session_id}/unread")
    assert unread.json()["unread"] == 1


def test_create_record_makes_a_lead_and_links_the_conversation(stack: Stack) -> None:
    session_id = _one_conversation(stack)
    created = _post(
        stack,
        f"/api/v1/sessions/{session_id}/create-record",
        {"table": "lead", "firstname": "Erin", "lastname": "Walsh", "email": "erin@example.com"},
    )
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]
    lead = stack.client.retrieve("leads", lead_id)
    assert lead["emailaddress1"] == "erin@example.com"
    assert _session_row(stack, session_id)["_regardingobjectid_value"] == lead_id
    refused = _post(stack, f"/api/v1/sessions/{session_id}/create-record", {"table": "contact"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "create_not_allowed"


def test_unknown_session_and_missing_key_are_problems(stack: Stack) -> None:
    missing = _post(stack, f"/api/v1/sessions/{uuid.uuid4()}/read")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "not_found"
    no_key = requests.get(stack.url + "/api/v1/sessions", timeout=10)
    assert no_key.status_code == 401 and no_key.json()["code"] == "unauthorized"
    bad_folder = _get(stack, "/api/v1/sessions", folder="spam")
    assert bad_folder.status_code == 422 and bad_folder.json()["code"] == "validation_failed"


def _signed_in(stack: Stack) -> tuple[requests.Session, str]:
    browser = requests.Session()
    signin = browser.post(
        stack.url + "/signin", data={"api_key": API_KEY}, allow_redirects=False, timeout=10
    )
    assert signin.status_code == 303 and signin.headers["location"] == "/messages"
    set_cookie = signin.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    assert "Secure" in set_cookie  # the public URL is https (the test speaks http: set by hand)
    browser.cookies.set("connector_page", signin.cookies["connector_page"])
    answer = browser.get(stack.url + "/messages", timeout=10)
    assert answer.status_code == 200 and answer.url.endswith("/messages"), answer.text
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', answer.text)
    assert match
    return browser, match.group(1)


def test_page_needs_a_valid_key_and_every_part_checks_the_session(stack: Stack) -> None:
    wrong = requests.post(stack.url + "/signin", data={"api_key": "nope"}, timeout=10)
    assert wrong.status_code == 401 and "not valid" in wrong.text
    for path in ("/messages", "/messages/list", "/messages/download", "/messages/compose"):
        answer = requests.get(stack.url + path, allow_redirects=False, timeout=10)
        assert answer.status_code in (303, 401), path
        assert answer.status_code == 401 or answer.headers["location"] == "/"
    partial = requests.get(stack.url + "/messages/list", headers={"HX-Request": "true"}, timeout=10)
    assert partial.status_code == 401 and partial.headers["HX-Redirect"] == "/"
    forged = requests.Session()
    forged.cookies.set("connector_page", "e30.AAAA")
    tampered = forged.get(stack.url + "/messages/list", allow_redirects=False, timeout=10)
    assert tampered.status_code == 303 and tampered.headers["location"] == "/"


def test_post_without_csrf_token_is_refused_and_changes_nothing(stack: Stack) -> None:
    session_id = _one_conversation(stack)
    browser, csrf = _signed_in(stack)
    refused = browser.post(stack.url + f"/messages/thread/{session_id}/archive", timeout=10)
    assert refused.status_code == 403
    assert (
        _session_row(stack, session_id)[tables.SESSION_FOLDER]
        != tables.SESSION_FOLDER_OPTIONS[True]
    )
    done = browser.post(
        stack.url + f"/messages/thread/{session_id}/archive", data={"csrf": csrf}, timeout=10
    )
    assert done.status_code == 200
    row = _session_row(stack, session_id)
    assert row[tables.SESSION_FOLDER] == tables.SESSION_FOLDER_OPTIONS[True]
    out = browser.post(stack.url + "/signout", data={"csrf": csrf}, timeout=10)
    assert out.status_code == 200 and "signed out" in out.text


def test_customer_text_is_shown_escaped_and_the_thread_csv_is_defused(stack: Stack) -> None:
    body = (
        "<script>alert(1)</script> =HYPERLINK(1) \u05e9\u05dc\u05d5\u05dd \U0001f600 Z\u0351\u0352"
    )
    session_id = _one_conversation(stack, body)
    browser, _ = _signed_in(stack)
    page = browser.get(stack.url + "/messages", params={"session": session_id}, timeout=10)
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "\u05e9\u05dc\u05d5\u05dd \U0001f600" in page.text
    csv_answer = browser.get(stack.url + f"/messages/thread/{session_id}/download", timeout=10)
    assert csv_answer.status_code == 200
    assert csv_answer.headers["content-type"].startswith("text/csv")
    text = csv_answer.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Message ID,Thread ID")
    assert "<script>alert(1)</script> =HYPERLINK(1)" in text


def test_page_opens_a_thread_in_two_requests_and_lists_a_folder_in_one(stack: Stack) -> None:
    session_id = _one_conversation(stack)
    browser, _ = _signed_in(stack)
    hx = {"HX-Request": "true"}
    browser.get(stack.url + f"/messages/thread/{session_id}", headers=hx, timeout=10)
    _post(stack, f"/api/v1/sessions/{session_id}/unread")  # templates are cached from now on
    before = _requests(stack)
    opened = browser.get(stack.url + f"/messages/thread/{session_id}", headers=hx, timeout=10)
    assert opened.status_code == 200 and "Alice Nguyen" in opened.text
    assert _requests(stack) - before <= 2  # its messages, and marking it read
    assert _session_row(stack, session_id)[tables.SESSION_UNREAD] == 0
    before = _requests(stack)
    listed = browser.get(stack.url + "/messages/list", headers=hx, timeout=10)
    assert listed.status_code == 200 and session_id in listed.text
    assert _requests(stack) - before <= 1


def test_mms_pictures_show_as_thumbnails_served_only_to_a_signed_in_agent(stack: Stack) -> None:
    sid, picture = emulator_stack._send_mms(stack)
    stack.wait_done(1)
    (session,) = _get(stack, "/api/v1/sessions").json()["sessions"]
    session_id = session["session_id"]
    (message,) = _get(stack, f"/api/v1/sessions/{session_id}/messages").json()["messages"]
    (media,) = message["media"]
    assert media["mimetype"] == "image/png"
    browser, _ = _signed_in(stack)
    thread = browser.get(
        stack.url + f"/messages/thread/{session_id}/messages", headers={"HX-Request": "true"}
    )
    assert f'src="/messages/media/{media["id"]}"' in thread.text
    served = browser.get(stack.url + f"/messages/media/{media['id']}", timeout=10)
    assert served.status_code == 200 and served.content == picture
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]
    stranger = requests.get(stack.url + f"/messages/media/{media['id']}", timeout=10)
    assert stranger.status_code in (303, 200) and stranger.content != picture
    assert browser.get(stack.url + f"/messages/media/{uuid.uuid4()}", timeout=10).status_code == 404
    assert sid


def test_the_page_ships_its_script_and_style(stack: Stack) -> None:
    for name, kind in (("htmx.min.js", "javascript"), ("page.css", "text/css")):
        answer = requests.get(stack.url + f"/static/page/{name}", timeout=10)
        assert answer.status_code == 200 and kind in answer.headers["content-type"]
    assert requests.get(stack.url + "/static/page/nope.js", timeout=10).status_code == 404
