"""``POST $batch``: multipart/mixed requests with atomic change sets.

Parsing uses :mod:`connector.multipart` (the standard library's MIME parser took a third of
the emulator's CPU under load, compiling a pattern per change-set boundary). The batch runs
in one SQLite transaction; a change set is a savepoint of it and rolls back entirely when one
of its operations fails (the others stay);
``Content-ID`` values let later operations refer to earlier creates as ``$n`` (in URLs and
``@odata.bind`` values). Without ``Prefer: odata.continue-on-error`` the batch stops at the
first failure and answers 400 with that failure as its only part; with it, every part is
answered under 200. Responses use ``batchresponse_`` / ``changesetresponse_`` boundaries and
CRLF line ends; creates carry ``Location`` and ``OData-EntityId``. At most 1000 operations
per batch.
"""

from __future__ import annotations

import uuid
from collections import Counter
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urlsplit

from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.protocol import (
    API_PREFIX,
    EmuRequest,
    EmuResponse,
    bad_request,
    fault_response,
)
from connector.emulators.dataverse.store import Store
from connector.multipart import MultipartError, Part, http_message, parse

MAX_OPERATIONS = 1000
_INHERITED = ("authorization", "callerobjectid")  # outer headers every part carries
CRLF = "\r\n"


class BatchHost(Protocol):
    """What ``$batch`` needs of the emulator: its store and counters, and running one part.

    The router passes itself; naming only what is used keeps this handler from importing the
    router that imports it.
    """

    store: Store
    stats: Counter[str]

    def handle(self, req: EmuRequest) -> EmuResponse:
        """Answer a lone part: faults become the Web API error envelope."""
        ...

    def dispatch(self, req: EmuRequest) -> EmuResponse:
        """Run a change-set part: faults raise (and roll the change set back)."""
        ...


class _ChangeSetFailedError(Exception):
    """Carries the failing response out of a change set's transaction (to roll it back)."""

    def __init__(self, response: EmuResponse, content_id: str | None) -> None:
        super().__init__("change set failed")
        self.response = response
        self.content_id = content_id


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """The batch body's parts; 400 (JSON, not multipart) when it is not multipart content."""
    if "multipart/mixed" not in content_type or "boundary" not in content_type:
        raise bad_request("The batch request must be multipart/mixed with a boundary.")
    try:
        return parse(content_type, body)
    except MultipartError as exc:
        raise bad_request(
            f"The batch request body is not valid multipart content: {exc}."
        ) from None


def _nested(item: Part) -> list[Part] | None:
    """A change set's parts (None: ``item`` is a lone operation)."""
    if item.boundary is None:
        return None
    try:
        return item.parts()
    except MultipartError as exc:
        raise bad_request(f"A change set is not valid multipart content: {exc}.") from None


def parse_inner(part: Part, outer: EmuRequest, content_ids: dict[str, str]) -> EmuRequest:
    """One ``application/http`` part as a request (``$n`` URL references resolved)."""
    try:
        raw = part.payload()
    except MultipartError as exc:
        raise bad_request(f"A batch part cannot be read: {exc}.") from None
    if not raw:
        raise bad_request("A batch part is empty.")
    request_line, pairs, body = http_message(raw)
    try:
        method, url, _ = request_line.split(" ", 2)
    except ValueError:
        raise bad_request(f"Invalid request line in batch part: '{request_line}'.") from None
    headers = dict(pairs)
    if url.startswith("$"):
        ref, _, rest = url[1:].partition("/")
        if ref not in content_ids:
            raise bad_request(
                f"Content-ID Reference: '${ref}' does not exist in the batch context."
            )
        url = content_ids[ref] + (f"/{rest}" if rest else "")
    split = urlsplit(url)
    path = split.path
    if API_PREFIX in path:
        path = path.split(API_PREFIX, 1)[1]
    merged = {**{k: v for k, v in outer.headers.items() if k in _INHERITED}, **headers}
    req = EmuRequest.build(
        method,
        path.lstrip("/"),
        split.query,
        merged,
        body=body.rstrip(b"\r\n"),
        base_url=outer.base_url,
    )
    req.content_ids = content_ids
    return req


def render_part(response: EmuResponse, content_id: str | None) -> str:
    """One ``application/http`` response part."""
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    status = HTTPStatus(response.status)
    lines += ["", f"HTTP/1.1 {status.value} {status.phrase}"]
    headers = {"REQ_ID": str(uuid.uuid4()), **response.headers}
    if "OData-EntityId" in headers:
        headers.setdefault("Location", headers["OData-EntityId"])
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["", response.body.decode("utf-8")]
    return CRLF.join(lines)


def handle(emulator: BatchHost, req: EmuRequest) -> EmuResponse:
    """Run a ``$batch`` request."""
    if req.method != "POST":
        raise EmulatorRequestError(405, "0x80060888", "$batch only accepts POST.")
    items = [
        (item, _nested(item))
        for item in parse_multipart(req.header("content-type") or "", req.body)
    ]
    total = sum(1 if members is None else len(members) for _, members in items)
    if total > MAX_OPERATIONS:
        raise bad_request(
            f"The number of operations in the batch ({total}) exceeds the limit of "
            f"{MAX_OPERATIONS}.",
            "0x80040203",
        )
    emulator.stats["batch_parts"] += total
    keep_going = "odata.continue-on-error" in req.prefer()
    content_ids: dict[str, str] = {}
    parts: list[str] = []
    failed = False
    # One SQLite transaction for the whole batch, each change set a savepoint of it: a failed
    # change set still rolls back alone, and the pages every message touches (the version
    # counter, the right-hand leaves of the modifiedon and versionnumber indexes...) reach
    # the WAL once per batch, not once per change set. With a transaction per change set
    # the emulator wrote about 56 WAL pages per message, 442 KB per message to disk in all
    # (20 MB/s at 50 messages/s in the inbound benchmark, on the disk the connector's
    # journal waits on); with one per batch, about 115 KB.
    with emulator.store.transaction():
        for item, members in items:
            if members is not None:
                text, ok = _change_set(emulator, req, members, content_ids)
            else:
                response = _single(emulator, req, item, content_ids)
                text, ok = render_part(response, item.get("Content-ID")), response.status < 400
            if not ok and not keep_going:
                parts, failed = [text], True
                break
            parts.append(text)
    boundary = f"batchresponse_{uuid.uuid4()}"
    body = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts) + f"--{boundary}--{CRLF}"
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}", "OData-Version": "4.0"}
    if keep_going:
        headers["Preference-Applied"] = "odata.continue-on-error"
    return EmuResponse(400 if failed else 200, headers, body.encode("utf-8"))


def _single(
    emulator: BatchHost, outer: EmuRequest, part: Part, content_ids: dict[str, str]
) -> EmuResponse:
    try:
        inner = parse_inner(part, outer, content_ids)
    except EmulatorRequestError as fault:
        return fault_response(fault)
    return emulator.handle(inner)


def _change_set(
    emulator: BatchHost, outer: EmuRequest, members: list[Part], content_ids: dict[str, str]
) -> tuple[str, bool]:
    rendered: list[str] = []
    try:
        with emulator.store.transaction():
            for part in members:
                rendered.append(_change(emulator, outer, part, content_ids))
    except _ChangeSetFailedError as failure:
        return render_part(failure.response, failure.content_id), False
    boundary = f"changesetresponse_{uuid.uuid4()}"
    inner = "".join(f"--{boundary}{CRLF}{text}{CRLF}" for text in rendered)
    text = (
        f"Content-Type: multipart/mixed; boundary={boundary}{CRLF}{CRLF}{inner}--{boundary}--{CRLF}"
    )
    return text, True


def _change(
    emulator: BatchHost,
    outer: EmuRequest,
    part: Part,
    content_ids: dict[str, str],
) -> str:
    content_id = part.get("Content-ID")
    try:
        inner = parse_inner(part, outer, content_ids)
        if inner.method == "GET":
            raise bad_request("A change set cannot contain a GET request.", "0x80060888")
        response = emulator.dispatch(inner)
    except EmulatorRequestError as fault:
        raise _ChangeSetFailedError(fault_response(fault), content_id) from fault
    if content_id and "OData-EntityId" in response.headers:
        content_ids[str(content_id)] = response.headers["OData-EntityId"]
    return render_part(response, content_id)
