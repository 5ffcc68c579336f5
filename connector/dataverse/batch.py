"""Pure ``$batch`` support: build multipart/mixed request bodies, parse the responses.

A batch is a list of items; an item is one :class:`BatchOperation` (run on its own) or a
:class:`ChangeSet` (operations that succeed or roll back together, which may refer to an
earlier member's new row as ``$<Content-ID>`` in a URL or bind). Dataverse takes at most
1000 operations per batch (:func:`split_items` cuts a longer list between items, never
inside a change set) and answers in request order, so :func:`parse_batch_response` maps the
answer back to one :class:`BatchPartResult` per operation: its status, new row id, headers,
body and, for a failure, the same :class:`~connector.errors.DataverseError` a single request
would raise (from :mod:`connector.dataverse.failures`). Operations a stopping batch never ran
come back with ``executed=False``. Lines end in CRLF as the wire format requires. No I/O.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from connector.dataverse.failures import error_for
from connector.dataverse.odata import entity_id_from_url
from connector.errors import DataverseError, InvalidInputError

MAX_OPERATIONS = 1000
CRLF = "\r\n"
_REFERENCE = re.compile(r"^\$(\w+)")
_BODY_METHODS = {"POST", "PATCH", "PUT"}


@dataclass(frozen=True, slots=True)
class BatchOperation:
    """One request inside a batch; ``url`` is relative to the API root, absolute, or ``$n...``."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Operations that Dataverse applies atomically (no GET allowed)."""

    operations: tuple[BatchOperation, ...]

    def __init__(self, operations: Sequence[BatchOperation]) -> None:
        object.__setattr__(self, "operations", tuple(operations))


BatchItem = BatchOperation | ChangeSet


@dataclass(frozen=True, slots=True)
class BatchBody:
    """A ready ``$batch`` request body and its ``Content-Type`` header."""

    content_type: str
    body: bytes
    items: tuple[BatchItem, ...]


@dataclass(frozen=True, slots=True)
class BatchPartResult:
    """What happened to one operation of a batch."""

    operation: BatchOperation
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    entity_id: str | None = None
    error: DataverseError | None = None
    executed: bool = True

    @property
    def ok(self) -> bool:
        """Whether the operation ran and succeeded."""
        return self.executed and self.error is None


def count_operations(items: Sequence[BatchItem]) -> int:
    """Operations in ``items`` (a change set counts its members)."""
    return sum(len(i.operations) if isinstance(i, ChangeSet) else 1 for i in items)


def split_items(
    items: Sequence[BatchItem], limit: int = MAX_OPERATIONS
) -> Iterator[list[BatchItem]]:
    """``items`` in consecutive groups of at most ``limit`` operations each."""
    group: list[BatchItem] = []
    size = 0
    for item in items:
        weight = len(item.operations) if isinstance(item, ChangeSet) else 1
        if weight > limit:
            raise InvalidInputError(f"a change set of {weight} operations exceeds {limit}")
        if group and size + weight > limit:
            yield group
            group, size = [], 0
        group.append(item)
        size += weight
    if group:
        yield group


def build_batch(
    items: Sequence[BatchItem], *, api_path: str = "/api/data/v9.2/", batch_id: str | None = None
) -> BatchBody:
    """The multipart body for ``items``; change-set members get Content-IDs (1, 2, ...)."""
    if not items:
        raise InvalidInputError("an empty batch")
    if count_operations(items) > MAX_OPERATIONS:
        raise InvalidInputError(f"more than {MAX_OPERATIONS} operations: use split_items")
    ident = batch_id or uuid.uuid4().hex
    boundary = f"batch_{ident}"
    numbered = _number_content_ids(items)
    lines: list[str] = []
    for index, item in enumerate(numbered):
        lines.append(f"--{boundary}")
        if isinstance(item, ChangeSet):
            lines.extend(_changeset_lines(item, f"changeset_{ident}_{index}", api_path))
        else:
            lines.extend(_operation_lines(item, api_path))
    lines.append(f"--{boundary}--")
    text = CRLF.join(lines) + CRLF
    return BatchBody(f'multipart/mixed; boundary="{boundary}"', text.encode(), tuple(numbered))


def _number_content_ids(items: Sequence[BatchItem]) -> list[BatchItem]:
    used = {op.content_id for op in operations(items) if op.content_id}
    counter = 0
    numbered: list[BatchItem] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, ChangeSet):
            numbered.append(item)
            continue
        ops = []
        declared: set[str] = set()
        for op in item.operations:
            if op.method.upper() == "GET":
                raise InvalidInputError("a change set may not contain GET")
            _check_reference(op.url, declared)
            content_id = op.content_id
            if content_id is None:
                counter += 1
                while str(counter) in used:
                    counter += 1
                content_id = str(counter)
            if content_id in seen:
                raise InvalidInputError(f"Content-ID {content_id} used twice in one batch")
            seen.add(content_id)
            declared.add(content_id)
            ops.append(_with_content_id(op, content_id))
        numbered.append(ChangeSet(ops))
    return numbered


def _with_content_id(op: BatchOperation, content_id: str) -> BatchOperation:
    return BatchOperation(op.method, op.url, op.body, op.headers, content_id)


def _check_reference(url: str, declared: set[str]) -> None:
    match = _REFERENCE.match(url)
    if match and match.group(1) not in declared:
        raise InvalidInputError(f"Content-ID reference ${match.group(1)} is not declared before")


def operations(items: Sequence[BatchItem]) -> Iterator[BatchOperation]:
    """Every operation of ``items``, change-set members in order."""
    for item in items:
        if isinstance(item, ChangeSet):
            yield from item.operations
        else:
            yield item


def _changeset_lines(changeset: ChangeSet, boundary: str, api_path: str) -> list[str]:
    lines = [f'Content-Type: multipart/mixed; boundary="{boundary}"', ""]
    for op in changeset.operations:
        lines.append(f"--{boundary}")
        lines.extend(_operation_lines(op, api_path))
    lines.append(f"--{boundary}--")
    lines.append("")
    return lines


def _operation_lines(op: BatchOperation, api_path: str) -> list[str]:
    method = op.method.upper()
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if op.content_id is not None:
        lines.append(f"Content-ID: {op.content_id}")
    url = op.url if op.url.startswith(("$", "http://", "https://")) else api_path + op.url
    lines += ["", f"{method} {url} HTTP/1.1"]
    headers = dict(op.headers)
    if op.body is not None and method in _BODY_METHODS:
        kind = "application/json; type=entry" if method == "POST" else "application/json"
        headers.setdefault("Content-Type", kind)
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("")
    lines.append(json.dumps(op.body, separators=(",", ":")) if op.body is not None else "")
    return lines


def parse_batch_response(
    content_type: str, body: bytes, items: Sequence[BatchItem]
) -> list[BatchPartResult]:
    """One result per operation of ``items`` (as sent) from a multipart ``$batch`` answer."""
    message = email.message_from_bytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body,
        policy=email.policy.compat32,
    )
    if not message.is_multipart():
        raise InvalidInputError("a $batch answer that is not multipart")
    parts: list[Message] = list(message.get_payload())  # type: ignore[arg-type]
    results: list[BatchPartResult] = []
    for index, item in enumerate(items):
        part = parts[index] if index < len(parts) else None
        results.extend(_item_results(item, part))
    return results


def _item_results(item: BatchItem, part: Message | None) -> list[BatchPartResult]:
    ops = list(item.operations) if isinstance(item, ChangeSet) else [item]
    if part is None:
        return [_not_executed(op) for op in ops]
    if not part.is_multipart():
        status, headers, payload = _inner_response(part)
        if len(ops) > 1:  # a failed change set answers once for all of its operations
            return [_result(op, status, headers, payload) for op in ops]
        return [_result(ops[0], status, headers, payload)]
    answers: list[Message] = list(part.get_payload())  # type: ignore[arg-type]
    by_id = {a.get("Content-ID"): a for a in answers if a.get("Content-ID")}
    results = []
    for position, op in enumerate(ops):
        answer = by_id.get(op.content_id) or (
            answers[position] if position < len(answers) else None
        )
        if answer is None:
            results.append(_not_executed(op))
        else:
            results.append(_result(op, *_inner_response(answer)))
    if any(r.error for r in results):  # atomic: nothing in a failed change set stayed applied
        return [r if r.error else _rolled_back(r) for r in results]
    return results


def _rolled_back(result: BatchPartResult) -> BatchPartResult:
    op = result.operation
    error = DataverseError(
        f"{op.method.upper()} {op.url} rolled back with its failed change set",
        code="dataverse_changeset_rolled_back",
        transient=True,
    )
    return BatchPartResult(op, result.status, result.headers, None, None, error, executed=False)


def _inner_response(part: Message) -> tuple[int, dict[str, str], bytes]:
    raw = part.get_payload(decode=True)
    data = raw if isinstance(raw, bytes) else str(raw or "").encode()
    status_line, _, rest = data.partition(b"\n")
    pieces = status_line.decode("latin-1").split()
    if len(pieces) < 2 or not pieces[1].isdigit():
        raise InvalidInputError(f"bad status line in a $batch answer: {status_line[:80]!r}")
    inner = email.message_from_bytes(rest, policy=email.policy.compat32)
    headers = {k: str(v) for k, v in inner.items()}
    payload = inner.get_payload(decode=True)
    return int(pieces[1]), headers, payload if isinstance(payload, bytes) else b""


def _result(
    op: BatchOperation, status: int, headers: dict[str, str], payload: bytes
) -> BatchPartResult:
    text = payload.strip()
    body: Any = None
    if text:
        try:
            body = json.loads(text)
        except ValueError:
            body = text.decode("utf-8", "replace")
    error = None
    if status >= 400:
        error = error_for(status, headers, text, method=op.method.upper(), path=op.url)
    lowered = {k.lower(): v for k, v in headers.items()}
    entity_id = entity_id_from_url(lowered.get("odata-entityid") or lowered.get("location"))
    return BatchPartResult(op, status, headers, body, entity_id, error)


def _not_executed(op: BatchOperation) -> BatchPartResult:
    error = DataverseError(
        f"{op.method.upper()} {op.url} not run: the batch stopped at an earlier failure",
        code="dataverse_batch_not_run",
        transient=True,
    )
    return BatchPartResult(op, 0, error=error, executed=False)
