"""Parse a ``$batch`` answer into one :class:`BatchPartResult` per operation sent.

Dataverse answers in request order: a part per operation, a nested multipart per change set,
or, for a change set that failed, one error part (every member then failed or was rolled
back). Each part echoes the operation's Content-ID. Without ``odata.continue-on-error`` the
batch stops at the first failure and the answer (HTTP 400) holds only that failure: the
operations before it ran (their result says so, without details), the ones after it never
ran (``executed=False``, safe to send again). A failure carries the same
:class:`~connector.errors.DataverseError` a single request would raise. No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from connector.dataverse.batch import BatchItem, BatchOperation, BatchPartResult, ChangeSet
from connector.dataverse.failures import error_for
from connector.dataverse.odata import entity_id_from_url
from connector.errors import DataverseError, InvalidInputError
from connector.multipart import MultipartError, Part, http_message, parse


def parse_batch_response(
    content_type: str, body: bytes, items: Sequence[BatchItem]
) -> list[BatchPartResult]:
    """One result per operation of ``items`` (as sent) from a multipart ``$batch`` answer."""
    try:
        parts = parse(content_type, body)
    except MultipartError as exc:
        raise InvalidInputError(f"a $batch answer that is not multipart content: {exc}") from None
    failed_at = _stopped_at(items, parts)
    results: list[BatchPartResult] = []
    for index, item in enumerate(items):
        if failed_at is None:
            part = parts[index] if index < len(parts) else None
        elif index < failed_at:  # ran before the failure; the answer has no part for it
            part = parts[index] if index < len(parts) - 1 else None
            if part is None:
                results.extend(_ran(op) for op in _ops(item))
                continue
        else:
            part = parts[-1] if index == failed_at else None
        results.extend(_item_results(item, part))
    return results


def _ops(item: BatchItem) -> list[BatchOperation]:
    return list(item.operations) if isinstance(item, ChangeSet) else [item]


def _stopped_at(items: Sequence[BatchItem], parts: list[Part]) -> int | None:
    """The index of the item a stopped batch failed at (None: every item has its part)."""
    if not parts or len(parts) >= len(items):
        return None
    failure = parts[-1]
    content_id = failure.get("Content-ID")
    for index, item in enumerate(items):
        if content_id and any(op.content_id == content_id for op in _ops(item)):
            return index
    return len(parts) - 1  # no Content-ID echoed: assume the answers are in order


def _ran(op: BatchOperation) -> BatchPartResult:
    """An operation that ran before a stopped batch's failure (status 0: not reported)."""
    return BatchPartResult(op, 0)


def _item_results(item: BatchItem, part: Part | None) -> list[BatchPartResult]:
    ops = _ops(item)
    if part is None:
        return [_not_executed(op) for op in ops]
    if part.boundary is None:
        status, headers, payload = _inner_response(part)
        if len(ops) > 1:  # a failed change set answers once for all of its operations
            return [_result(op, status, headers, payload) for op in ops]
        return [_result(ops[0], status, headers, payload)]
    try:
        answers = part.parts()
    except MultipartError as exc:
        raise InvalidInputError(f"a change set answer that is not multipart: {exc}") from None
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


def _inner_response(part: Part) -> tuple[int, dict[str, str], bytes]:
    try:
        data = part.payload()
    except MultipartError as exc:
        raise InvalidInputError(f"a $batch answer part that cannot be read: {exc}") from None
    status_line, headers, payload = http_message(data)
    pieces = status_line.split()
    if len(pieces) < 2 or not pieces[1].isdigit():
        raise InvalidInputError(f"bad status line in a $batch answer: {status_line[:80]!r}")
    return int(pieces[1]), dict(headers), payload


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
