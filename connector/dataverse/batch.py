"""Pure ``$batch`` requests: the operation model, the multipart/mixed builder, splitting.

A batch is a list of items; an item is one :class:`BatchOperation` (run on its own) or a
:class:`ChangeSet` (operations that succeed or roll back together, which may refer to an
earlier member's new row as ``$<Content-ID>`` in a URL or bind). Every operation gets a
Content-ID unique in the batch, so an answer part can always be traced to its operation
(:mod:`connector.dataverse.batch_results` parses answers). Dataverse takes at most 1000
operations per batch: :func:`split_items` cuts a longer list between items, never inside a
change set. Request lines are percent-encoded (a space in a filter would end the URL) and
lines end in CRLF as the wire format requires. No I/O.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from connector.errors import DataverseError, InvalidInputError

MAX_OPERATIONS = 1000
CRLF = "\r\n"
_REFERENCE = re.compile(r"^\$(\w+)")
_BODY_METHODS = {"POST", "PATCH", "PUT"}
# Kept as they are in a request line: reserved characters and existing %-escapes.
_URL_SAFE = "/:?#[]@!$&'()*+,;=%"


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
    seen: set[str] = set()

    def numbered(op: BatchOperation) -> BatchOperation:
        nonlocal counter
        content_id = op.content_id
        if content_id is None:
            counter += 1
            while str(counter) in used:
                counter += 1
            content_id = str(counter)
        if content_id in seen:
            raise InvalidInputError(f"Content-ID {content_id} used twice in one batch")
        seen.add(content_id)
        return _with_content_id(op, content_id)

    result: list[BatchItem] = []
    for item in items:
        if not isinstance(item, ChangeSet):
            result.append(numbered(item))
            continue
        declared: set[str] = set()
        ops = []
        for op in item.operations:
            if op.method.upper() == "GET":
                raise InvalidInputError("a change set may not contain GET")
            _check_reference(op.url, declared)
            ops.append(numbered(op))
            declared.add(str(ops[-1].content_id))
        result.append(ChangeSet(ops))
    return result


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
    url = quote(url, safe=_URL_SAFE)
    lines += ["", f"{method} {url} HTTP/1.1"]
    headers = dict(op.headers)
    if op.body is not None and method in _BODY_METHODS:
        kind = "application/json; type=entry" if method == "POST" else "application/json"
        headers.setdefault("Content-Type", kind)
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("")
    lines.append(json.dumps(op.body, separators=(",", ":")) if op.body is not None else "")
    return lines
