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

import email
import email.policy
import json
from collections.abc import Sequence
from email.message import Message
from typing import Any

from connector.dataverse.batch import BatchItem, BatchOperation, BatchPartResult, ChangeSet
from connector.dataverse.failures import error_for
from connector.dataverse.odata import entity_id_from_url
from connector.errors import DataverseError, InvalidInputError


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


def _stopped_at(items: Sequence[BatchItem], parts: list[Message]) -> int | None:
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


def _item_results(item: BatchItem, part: Message | None) -> list[BatchPartResult]:
    ops = _ops(item)
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
