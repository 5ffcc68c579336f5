"""Emulator ``$batch`` over real HTTP: change sets, Content-ID references, errors, limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

import pytest
import requests

CRLF = "\r\n"


@pytest.fixture
def api(emulator_url: str) -> Iterator[tuple[requests.Session, str, str]]:
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer test"
        yield session, emulator_url + "/api/data/v9.2/", emulator_url


def _op(
    method: str, url: str, body: dict[str, object] | None = None, content_id: str | None = None
) -> str:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        head.append(f"Content-ID: {content_id}")
    inner = [f"{method} {url} HTTP/1.1"]
    if body is not None:
        inner.append("Content-Type: application/json; type=entry")
    text = CRLF.join([*head, "", *inner, "", json.dumps(body) if body is not None else ""])
    return text


def _changeset(name: str, ops: list[str]) -> str:
    parts = "".join(f"--{name}{CRLF}{op}{CRLF}" for op in ops)
    return f'Content-Type: multipart/mixed; boundary="{name}"{CRLF}{CRLF}{parts}--{name}--{CRLF}'


def _batch(items: list[str]) -> tuple[bytes, dict[str, str]]:
    body = "".join(f"--batch_x{CRLF}{item}{CRLF}" for item in items) + f"--batch_x--{CRLF}"
    return body.encode(), {"Content-Type": 'multipart/mixed; boundary="batch_x"'}


def _parts(response: requests.Response) -> list[EmailMessage]:
    head = f"Content-Type: {response.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(_class=EmailMessage, policy=policy.HTTP).parsebytes(
        head + response.content
    )
    assert isinstance(message, EmailMessage)
    return list(message.iter_parts())  # type: ignore[arg-type]


def _status(part: Message) -> int:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return int(payload.split(b" ", 2)[1])


def _count(session: requests.Session, root: str, lastname: str) -> int:
    return len(session.get(root + f"contacts?$filter=lastname eq '{lastname}'").json()["value"])


def test_changeset_with_content_id_reference_and_get(
    api: tuple[requests.Session, str, str],
) -> None:
    session, root, _ = api
    body, headers = _batch(
        [
            _changeset(
                "cs_1",
                [
                    _op("POST", "/api/data/v9.2/contacts", {"lastname": "Ref"}, "1"),
                    _op(
                        "POST",
                        "/api/data/v9.2/tasks",
                        {"subject": "T", "regardingobjectid_contact_task@odata.bind": "$1"},
                        "2",
                    ),
                    _op("PATCH", "$1", {"firstname": "Via"}, "3"),
                ],
            ),
            _op("GET", root + "tasks?$select=subject"),
        ]
    )
    response = session.post(root + "$batch", data=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert b"\r\n" in response.content
    changeset, query = _parts(response)
    assert changeset.get_content_type() == "multipart/mixed"
    assert "changesetresponse_" in changeset["Content-Type"]
    inner = list(changeset.iter_parts())
    assert [p["Content-ID"] for p in inner] == ["1", "2", "3"]
    assert [_status(p) for p in inner] == [204, 204, 204]
    first = inner[0].get_payload(decode=True)
    assert isinstance(first, bytes) and b"Location: " in first and b"OData-EntityId: " in first
    assert _status(query) == 200
    assert (
        session.get(root + "contacts?$filter=lastname eq 'Ref'").json()["value"][0]["firstname"]
        == "Via"
    )


def test_failed_changeset_rolls_back_and_batch_stops_with_400(
    api: tuple[requests.Session, str, str],
) -> None:
    session, root, _ = api
    body, headers = _batch(
        [
            _changeset(
                "cs_1",
                [
                    _op("POST", "/api/data/v9.2/contacts", {"lastname": "Rollback"}, "1"),
                    _op("POST", "/api/data/v9.2/contacts", {"mobilephone": "1" * 80}, "2"),
                ],
            ),
            _op("POST", root + "contacts", {"lastname": "NeverRun"}),
        ]
    )
    response = session.post(root + "$batch", data=body, headers=headers)
    assert response.status_code == 400
    parts = _parts(response)
    assert len(parts) == 1 and _status(parts[0]) == 400
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes) and b"0x80044331" in payload
    assert _count(session, root, "Rollback") == 0
    assert _count(session, root, "NeverRun") == 0


def test_continue_on_error_reports_every_part(api: tuple[requests.Session, str, str]) -> None:
    session, root, _ = api
    body, headers = _batch(
        [
            _op("POST", root + "contacts", {"nosuch": 1}),
            _op("POST", root + "contacts", {"lastname": "AfterError"}),
        ]
    )
    headers["Prefer"] = "odata.continue-on-error"
    response = session.post(root + "$batch", data=body, headers=headers)
    assert response.status_code == 200
    assert [_status(p) for p in _parts(response)] == [400, 204]
    assert _count(session, root, "AfterError") == 1


def test_get_inside_changeset_and_unknown_reference_are_errors(
    api: tuple[requests.Session, str, str],
) -> None:
    session, root, _ = api
    body, headers = _batch([_changeset("cs_1", [_op("GET", root + "contacts", None, "1")])])
    assert session.post(root + "$batch", data=body, headers=headers).status_code == 400
    body, headers = _batch(
        [
            _changeset(
                "cs_2",
                [
                    _op(
                        "POST",
                        root + "tasks",
                        {"subject": "x", "regardingobjectid_contact_task@odata.bind": "$9"},
                        "1",
                    )
                ],
            )
        ]
    )
    response = session.post(root + "$batch", data=body, headers=headers)
    assert response.status_code == 400
    assert b"Content-ID Reference: '$9' does not exist in the batch context." in response.content


def test_more_than_1000_operations_is_refused(api: tuple[requests.Session, str, str]) -> None:
    session, root, _ = api
    body, headers = _batch([_op("GET", root + "WhoAmI") for _ in range(1001)])
    response = session.post(root + "$batch", data=body, headers=headers)
    assert response.status_code == 400
    assert "1000" in response.json()["error"]["message"]


def test_non_multipart_batch_gets_json_error(api: tuple[requests.Session, str, str]) -> None:
    session, root, _ = api
    response = session.post(root + "$batch", json={"not": "multipart"})
    assert response.status_code == 400
    assert "error" in response.json()


def test_batch_counts_once_in_stats(api: tuple[requests.Session, str, str]) -> None:
    session, root, base = api
    body, headers = _batch([_op("GET", root + "WhoAmI"), _op("GET", root + "WhoAmI")])
    session.post(root + "$batch", data=body, headers=headers)
    stats = requests.get(base + "/_emulator/stats", timeout=10).json()
    assert stats["requests"] == 1
    assert stats["batch_requests"] == 1 and stats["batch_parts"] == 2
    assert stats["by_method"] == {"POST": 1}


def test_truncated_batch_is_refused_and_writes_nothing(
    api: tuple[requests.Session, str, str],
) -> None:
    session, root, _ = api
    create = _op("POST", root + "contacts", {"lastname": "Truncated"}, content_id="1")
    body, headers = _batch([_changeset("changeset_t", [create])])
    cut = body[: body.rindex(b"--batch_x--")]  # the closing delimiter never arrived
    response = session.post(root + "$batch", data=cut, headers=headers)
    assert response.status_code == 400
    assert "closing delimiter" in response.json()["error"]["message"]
    assert _count(session, root, "Truncated") == 0


def test_each_change_set_commits_or_rolls_back_on_its_own(
    api: tuple[requests.Session, str, str],
) -> None:
    """The batch shares one transaction; its change sets are savepoints of it. A failing
    change set takes only its own writes back: the ones before it stay, with or without
    continue-on-error, and with it the ones after it are written too."""
    session, root, _ = api
    bad: dict[str, object] = {
        "mobilephone": "1" * 80
    }  # longer than the column allows: the create fails

    def change_set(name: str, *bodies: dict[str, object]) -> str:
        ops = [_op("POST", root + "contacts", b, str(i)) for i, b in enumerate(bodies, 1)]
        return _changeset(name, ops)

    body, headers = _batch(
        [
            change_set("cs_a", {"lastname": "KeptBefore"}),
            change_set("cs_b", {"lastname": "RolledBack"}, bad),
            change_set("cs_c", {"lastname": "KeptAfter"}),
        ]
    )
    headers["Prefer"] = "odata.continue-on-error"
    response = session.post(root + "$batch", data=body, headers=headers)
    assert response.status_code == 200
    assert [
        _status(p) if p.get_content_type() == "application/http" else "set"
        for p in _parts(response)
    ] == ["set", 400, "set"]
    assert [_count(session, root, n) for n in ("KeptBefore", "RolledBack", "KeptAfter")] == [
        1,
        0,
        1,
    ]

    body, headers = _batch(
        [
            change_set("cs_d", {"lastname": "StaysBeforeStop"}),
            change_set("cs_e", bad),
            change_set("cs_f", {"lastname": "NeverReached"}),
        ]
    )
    response = session.post(root + "$batch", data=body, headers=headers)
    assert response.status_code == 400
    assert _count(session, root, "StaysBeforeStop") == 1
    assert _count(session, root, "NeverReached") == 0
