"""Outbound message rows created in Dataverse (sends that start in Dynamics), read and settled.

Three ways a row reaches the connector, one shape (:class:`~connector.domain.crm_sends.CrmSendRow`):

* the Dataverse webhook: :func:`webhook_event` checks the ``RemoteExecutionContext`` is an
  asynchronous Create of ``smsc_message`` (else 400) and keeps the ``Target``'s columns as the
  journal payload; :func:`row_from_event` reads them back in the worker (a trimmed context,
  without ``Target``, is read through the Web API instead);
* the poll: :meth:`DataverseSendRows.queued_since`, ONE request for outbound rows with status
  queued (or none) and no provider id, modified since a time, oldest first;
* a read by id (:meth:`DataverseSendRows.read`), for a trimmed webhook.

A refused row is PATCHed ``failed`` (and completed) with the failure category, code and reason
(:meth:`DataverseSendRows.mark_failed`); a sent one is updated by the outbound writer (its id
is the message id). Option values come from ``solution_schema/tables/message.yaml``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from connector.crm import tables
from connector.crm.activity_rows import ActivityState, when
from connector.crm.outbound_rows import DIRECTION_OUTBOUND, FAILURE_OPTIONS, STATUS_OPTIONS
from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.dataverse.remote_context import EntityReference, parse_remote_context
from connector.domain.crm_sends import CrmSendRow
from connector.domain.model import MessageCategory
from connector.domain.outbound import Failure
from connector.domain.routing import RecordRef
from connector.domain.status import MessageStatus
from connector.errors import DataverseNotFoundError, InvalidInputError
from connector.ports import ProviderEvent

QUEUED = STATUS_OPTIONS[MessageStatus.QUEUED]
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
ANNOTATIONS = {"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'}
CREATE = "Create"
_MESSAGE = tables.MESSAGE
_REGARDING = "regardingobjectid"
_COLUMNS = (
    _MESSAGE.id_column,
    tables.MESSAGE_DIRECTION,
    tables.MESSAGE_STATUS,
    tables.MESSAGE_PROVIDER_ID,
    tables.MESSAGE_BODY,
    tables.MESSAGE_TO,
    tables.MESSAGE_FROM,
    tables.MESSAGE_CATEGORY,
    "modifiedon",
)
_LOOKUPS = (_REGARDING, tables.MESSAGE_TEMPLATE_LOOKUP, tables.CONFIGURATION_LOOKUP)
SELECT = (*_COLUMNS, *(_MESSAGE.value(lookup) for lookup in _LOOKUPS))
_CATEGORIES = {v: k for k, v in tables.CATEGORY_OPTIONS.items()}


def webhook_event(body: bytes) -> ProviderEvent:
    """The journal event of a Dataverse webhook body: the row id, and the ``Target``'s
    columns when the context carries them. :class:`InvalidInputError` (400) for a body that
    is not a ``RemoteExecutionContext`` of a Create of ``smsc_message``."""
    context = parse_remote_context(body)
    if context.message_name != CREATE or context.primary_entity_name != _MESSAGE.logical_name:
        raise InvalidInputError(
            f"this webhook takes Create of {_MESSAGE.logical_name}, not "
            f"{context.message_name[:40]} of {context.primary_entity_name[:64]}",
            code="unexpected_event",
        )
    target = None if context.target is None else _plain(context.target)
    payload: dict[str, Any] = {
        "row_id": context.primary_entity_id,
        "target": target,
        "correlation_id": context.correlation_id,
        "step_id": context.owning_extension_id,
    }
    return ProviderEvent(context.primary_entity_id, payload)


def _plain(target: Mapping[str, Any]) -> dict[str, Any]:
    """The columns the connector reads, JSON-ready (lookups as ``{"table", "id"}``)."""
    kept: dict[str, Any] = {}
    for name in (*_COLUMNS, *_LOOKUPS):
        value = target.get(name)
        if isinstance(value, EntityReference):
            kept[name] = {"table": value.logical_name, "id": value.id}
        elif isinstance(value, datetime):
            kept[name] = value.isoformat()
        elif value is None or isinstance(value, str | int | float | bool):
            kept[name] = value
    return kept


def row_from_event(payload: Mapping[str, Any]) -> CrmSendRow | None:
    """The row a journaled webhook event carries (None: trimmed, read it by id)."""
    target = payload.get("target")
    if not isinstance(target, Mapping):
        return None
    lookups = {
        name: RecordRef(str(ref["table"]), str(ref["id"]))
        for name in _LOOKUPS
        if isinstance(ref := target.get(name), Mapping) and ref.get("id")
    }
    return _row(str(payload["row_id"]), target, lookups)


def waits_for_us(event: ProviderEvent) -> bool:
    """Whether a webhook event may be a row to send (a trimmed one may: it is read back)."""
    row = row_from_event(event.payload)
    return row is None or row.waiting


def row_from_web_api(row: Mapping[str, Any]) -> CrmSendRow:
    """A row as the Web API returns it (``_x_value`` lookups with their table annotation)."""
    lookups: dict[str, RecordRef] = {}
    for name in _LOOKUPS:
        value = row.get(_MESSAGE.value(name))
        if value:
            table = row.get(_MESSAGE.value(name) + LOOKUP_TABLE) or ""
            lookups[name] = RecordRef(str(table), str(value))
    return _row(str(row[_MESSAGE.id_column]), row, lookups)


def _row(row_id: str, values: Mapping[str, Any], lookups: Mapping[str, RecordRef]) -> CrmSendRow:
    status = values.get(tables.MESSAGE_STATUS)
    category = _CATEGORIES.get(_int(values.get(tables.MESSAGE_CATEGORY)) or 0)
    template = lookups.get(tables.MESSAGE_TEMPLATE_LOOKUP)
    configuration = lookups.get(tables.CONFIGURATION_LOOKUP)
    return CrmSendRow(
        id=row_id.lower(),
        outbound=_int(values.get(tables.MESSAGE_DIRECTION)) == DIRECTION_OUTBOUND,
        queued=status is None or _int(status) == QUEUED,
        provider_id=_text(values.get(tables.MESSAGE_PROVIDER_ID)),
        regarding=lookups.get(_REGARDING),
        body=_text(values.get(tables.MESSAGE_BODY)),
        template_id=template.id if template else None,
        to=_text(values.get(tables.MESSAGE_TO)),
        from_number=_text(values.get(tables.MESSAGE_FROM)),
        configuration_id=configuration.id if configuration else None,
        category=category if isinstance(category, MessageCategory) else None,
        modified_at=_text(values.get("modifiedon")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def failed_row(failure: Failure) -> dict[str, Any]:
    """The PATCH body of a refused row: failed, with category, code and reason."""
    return {
        tables.MESSAGE_STATUS: STATUS_OPTIONS[MessageStatus.FAILED],
        tables.MESSAGE_FAILURE_CATEGORY: FAILURE_OPTIONS[failure.category],
        tables.MESSAGE_ERROR_CODE: (failure.code or "")[:32] or None,
        tables.MESSAGE_ERROR_TEXT: failure.reason[:2000],
    }


def queued_filter(since: datetime | None) -> odata.Filter:
    """Outbound rows waiting for us: queued (or no status), no provider id, modified since."""
    parts = [
        odata.eq(tables.MESSAGE_DIRECTION, DIRECTION_OUTBOUND),
        odata.or_(odata.eq(tables.MESSAGE_STATUS, QUEUED), odata.is_null(tables.MESSAGE_STATUS)),
        odata.is_null(tables.MESSAGE_PROVIDER_ID),
    ]
    if since is not None:
        parts.append(odata.ge("modifiedon", since))
    return odata.and_(*parts)


class DataverseSendRows:
    """Implements :class:`~connector.ports.CrmSendRows` over the Web API client."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def from_event(self, payload: Mapping[str, Any]) -> CrmSendRow | None:
        """The row in a journaled webhook event (None: read it)."""
        return row_from_event(payload)

    def read(self, row_id: str) -> CrmSendRow | None:
        """One row by id (None: deleted meanwhile)."""
        query = odata.query_options(select=SELECT)
        path = odata.entity_path(_MESSAGE.entity_set, row_id)
        try:
            answer = self._client.request("GET", path, query=query, headers=ANNOTATIONS)
        except DataverseNotFoundError:
            return None
        return row_from_web_api(dict(answer.json() or {}))

    def queued_since(self, since: datetime | None, limit: int) -> Sequence[CrmSendRow]:
        """Up to ``limit`` waiting rows modified since ``since``, oldest first: ONE request."""
        query = odata.query_options(
            select=SELECT, filter=queued_filter(since), orderby=["modifiedon asc"], top=limit
        )
        answer = self._client.request(
            "GET", odata.identifier(_MESSAGE.entity_set), query=query, headers=ANNOTATIONS
        )
        return [row_from_web_api(row) for row in (answer.json() or {}).get("value", [])]

    def mark_failed(self, row_id: str, failure: Failure) -> None:
        """The row ends failed, saying why (visible in Dynamics), and completed: ONE PATCH,
        an update that changes the state (so it also applies to a row completed already)."""
        ended = {**ActivityState.COMPLETED.pair, "actualend": when(time.time())}
        body = {**failed_row(failure), **ended}
        self._client.update(_MESSAGE.entity_set, row_id, body)
