"""The emulator's asynchronous service for webhooks: POST a ``RemoteExecutionContext`` to each
registered service endpoint after a matching Create commits.

A step (``sdkmessageprocessingstep``, enabled) whose filter names a table and the Create
message, and whose event handler is a webhook endpoint (contract 8), gets each committed
Create of that table: the body is the context as Dataverse serialises it (section 11.7/11.8 of
the Web API notes: PascalCase fields, ``{"key","value"}`` lists, ``__type``-tagged values,
``\\/Date(ms)\\/`` dates, the ``Target`` with every stored column), with the documented headers
(``x-request-id``, ``x-ms-dynamics-organization``, ``-entity-name``, ``-request-name``,
``x-ms-correlation-request-id``) and the endpoint's auth: WebhookKey adds ``?code=<key>``,
HttpHeader sends each ``<setting>`` as a header, HttpQueryString each as a query parameter.
Posts go out in commit order from one daemon thread. Like Dataverse, a ``502``/``503``/``504``
gets one more attempt; so does a connection failure (unconfirmed for Dataverse), after
``retry_delay``. :attr:`WebhookDispatcher.deliveries` keeps what was posted, for tests (a test
can post one again: Dataverse may deliver twice).
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import requests

from connector.emulators.dataverse import plugins
from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.seed import (
    SEED_BUSINESS_UNIT_ID,
    SEED_ORGANIZATION_ID,
    SEED_USER_ID,
)
from connector.log_config import get_logger

log = get_logger(__name__)
CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"
ORGANIZATION = "emulator.crm.dynamics.com"
ORGANIZATION_NAME = "unq" + SEED_ORGANIZATION_ID.replace("-", "")[:29]
WEBHOOK_CONTRACT = 8
AUTH_WEBHOOK_KEY, AUTH_HEADER, AUTH_QUERY = 4, 5, 6
RETRIED_STATUSES = frozenset({502, 503, 504})
_OPTION_TYPES = frozenset({"Picklist", "State", "Status"})


@dataclass(frozen=True, slots=True)
class Target:
    """One registered step of a table: where and how to post."""

    step_id: str
    step_name: str
    url: str
    headers: dict[str, str]
    query: list[tuple[str, str]]


@dataclass
class Delivery:
    """One post: what was sent and how it ended (``status`` None: no answer)."""

    url: str
    headers: dict[str, str]
    body: bytes
    row_id: str
    attempts: int = 0
    status: int | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)


class WebhookDispatcher:
    """Posts contexts to registered webhooks (see the module docstring)."""

    def __init__(
        self,
        records: Callable[[], Records],
        *,
        attempts: int = 2,
        retry_delay: float = 1.0,
        timeout: float = 60.0,
    ) -> None:
        self._records = records
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._targets: dict[str, list[Target]] | None = None
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._http = requests.Session()

    # -- what the store tells us ----------------------------------------------------------

    def forget_registrations(self) -> None:
        """Read the registered steps again on the next Create (the rows were replaced)."""
        self._targets = None

    def written(self, entity: EntityDef, record_id: str, operation: str) -> None:
        """A committed write: registrations change what is posted; a Create may be posted."""
        name = entity.logical_name
        if name in plugins.TABLES:
            self._targets = None
            if name == plugins.ENDPOINT:
                self._endpoint_written(entity, record_id, operation)
            return
        if operation != "create":
            return
        targets = self._registered().get(name)
        if not targets:
            return
        row = self._records().get(entity, record_id)
        if row is None:
            return
        for target in targets:
            self._enqueue(target, entity, row)

    def _endpoint_written(self, entity: EntityDef, record_id: str, operation: str) -> None:
        records = self._records()
        if operation == "delete":  # serviceendpoint_sdkmessageprocessingstep cascades
            step = records.schema.entities[plugins.STEP]
            for row in records.store.select(
                'SELECT * FROM "e_sdkmessageprocessingstep" WHERE eventhandler = ?', [record_id]
            ):
                records.delete(step, row)
            return
        records.store.conn.execute(
            'UPDATE "e_serviceendpoint" SET isauthvalueset = '
            "(authvalue IS NOT NULL AND authvalue != '') WHERE serviceendpointid = ?",
            [record_id],
        )

    def _registered(self) -> dict[str, list[Target]]:
        cached = self._targets
        if cached is not None:
            return cached
        found: dict[str, list[Target]] = {}
        store = self._records().store
        rows = store.select(
            "SELECT s.sdkmessageprocessingstepid AS step_id, s.name AS step_name, "
            "f.primaryobjecttypecode AS table_name, e.url, e.authtype, e.authvalue "
            'FROM "e_sdkmessageprocessingstep" s '
            'JOIN "e_sdkmessagefilter" f ON f.sdkmessagefilterid = s.sdkmessagefilterid '
            'JOIN "e_sdkmessage" m ON m.sdkmessageid = s.sdkmessageid '
            'JOIN "e_serviceendpoint" e ON e.serviceendpointid = s.eventhandler '
            "WHERE m.name = 'Create' AND s.statecode = 0 AND e.contract = ?",
            [WEBHOOK_CONTRACT],
        )
        for row in rows:
            headers, query = _auth(row["authtype"], row["authvalue"])
            target = Target(
                str(row["step_id"]), str(row["step_name"] or ""), str(row["url"]), headers, query
            )
            found.setdefault(str(row["table_name"]).lower(), []).append(target)
        self._targets = found
        return found

    # -- posting --------------------------------------------------------------------------

    def _enqueue(self, target: Target, entity: EntityDef, row: dict[str, Any]) -> None:
        correlation = str(uuid.uuid4())
        record_id = str(row[entity.primary_id])
        body = remote_context(entity, row, target, correlation)
        url = target.url
        if target.query:
            url += ("&" if "?" in url else "?") + urlencode(target.query)
        headers = {
            "Content-Type": "application/json",
            "x-request-id": str(uuid.uuid4()),
            "x-ms-dynamics-organization": ORGANIZATION,
            "x-ms-dynamics-entity-name": entity.logical_name,
            "x-ms-dynamics-request-name": "Create",
            "x-ms-correlation-request-id": correlation,
            **target.headers,
        }
        delivery = Delivery(url, headers, body, record_id)
        with self._lock:
            self.deliveries.append(delivery)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="emulator-webhooks", daemon=True
                )
                self._thread.start()
        self._queue.put(delivery)

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                self._post(delivery)
            finally:
                delivery.done.set()

    def _post(self, delivery: Delivery) -> None:
        for attempt in range(1, self.attempts + 1):
            delivery.attempts = attempt
            try:
                answer = self._http.post(
                    delivery.url, data=delivery.body, headers=delivery.headers,
                    timeout=self.timeout,
                )  # fmt: skip
            except requests.RequestException as exc:
                delivery.status, delivery.error = None, type(exc).__name__
            else:
                delivery.status, delivery.error = answer.status_code, None
                if answer.status_code not in RETRIED_STATUSES:
                    break
            if attempt < self.attempts:
                threading.Event().wait(self.retry_delay)
        if delivery.status is None or delivery.status >= 300:
            log.warning(
                "emulator.webhook_failed", url=delivery.url.split("?")[0],
                status=delivery.status, error=delivery.error,
            )  # fmt: skip

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Whether every delivery so far has ended within ``timeout`` seconds (tests)."""
        with self._lock:
            pending = list(self.deliveries)
        return all(d.done.wait(timeout) for d in pending)


def _auth(authtype: Any, authvalue: Any) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Headers and query parameters of an endpoint's auth."""
    value = str(authvalue or "")
    if authtype == AUTH_WEBHOOK_KEY:
        return {}, [("code", value)] if value else []
    if authtype not in (AUTH_HEADER, AUTH_QUERY) or not value:
        return {}, []
    try:
        root = ET.fromstring(value)  # noqa: S314 - written through our own Web API
    except ET.ParseError:
        return {}, []
    pairs = [
        (str(s.get("name")), str(s.get("value") or "")) for s in root.iter("setting")
        if s.get("name")
    ]  # fmt: skip
    return (dict(pairs), []) if authtype == AUTH_HEADER else ({}, pairs)


def _dc(entity: EntityDef, name: str, row: dict[str, Any]) -> Any:
    """One stored column as DataContract JSON (``None``: leave it out)."""
    attr = entity.attributes[name]
    value = row.get(name)
    if value is None:
        return None
    if attr.is_lookup:
        return {
            "__type": f"EntityReference:{CONTRACTS}",
            "Id": value,
            "KeyAttributes": [],
            "LogicalName": row.get(f"{name}__type"),
            "Name": None,
            "RowVersion": None,
        }
    kind = "OptionSetValue" if attr.attribute_type in _OPTION_TYPES else attr.attribute_type
    convert = _CONVERT.get(kind)
    return value if convert is None else convert(value)


def _ms_date(value: Any) -> str:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return f"/Date({int(moment.timestamp() * 1000)})/"


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "OptionSetValue": lambda v: {"__type": f"OptionSetValue:{CONTRACTS}", "Value": int(v)},
    "Money": lambda v: {"__type": f"Money:{CONTRACTS}", "Value": v},
    "Boolean": bool,
    "DateTime": _ms_date,
}


def remote_context(
    entity: EntityDef, row: dict[str, Any], target: Target, correlation: str
) -> bytes:
    """The body Dataverse posts for the Create of ``row`` (``\\/`` escaped as on the wire)."""
    record_id = str(row[entity.primary_id])
    attributes = [
        {"key": name, "value": value}
        for name in entity.attributes
        if (value := _dc(entity, name, row)) is not None
    ]
    operation = str(uuid.uuid4())
    now = f"/Date({int(datetime.now().timestamp() * 1000)}+0000)/"
    context = {
        "BusinessUnitId": SEED_BUSINESS_UNIT_ID,
        "CorrelationId": correlation,
        "Depth": 1,
        "InitiatingUserAgent": "",
        "InitiatingUserId": SEED_USER_ID,
        "InputParameters": [
            {
                "key": "Target",
                "value": {
                    "__type": f"Entity:{CONTRACTS}",
                    "Attributes": attributes,
                    "EntityState": None,
                    "FormattedValues": [],
                    "Id": record_id,
                    "KeyAttributes": [],
                    "LogicalName": entity.logical_name,
                    "RelatedEntities": [],
                    "RowVersion": str(row.get("versionnumber") or ""),
                },
            }
        ],
        "IsExecutingOffline": False,
        "IsInTransaction": False,
        "IsOfflinePlayback": False,
        "IsolationMode": 1,
        "MessageName": "Create",
        "Mode": 1,
        "OperationCreatedOn": now,
        "OperationId": operation,
        "OrganizationId": SEED_ORGANIZATION_ID,
        "OrganizationName": ORGANIZATION_NAME,
        "OutputParameters": [{"key": "id", "value": record_id}],
        "OwningExtension": {
            "Id": target.step_id,
            "KeyAttributes": [],
            "LogicalName": plugins.STEP,
            "Name": target.step_name,
            "RowVersion": None,
        },
        "ParentContext": None,
        "PostEntityImages": [],
        "PreEntityImages": [],
        "PrimaryEntityId": record_id,
        "PrimaryEntityName": entity.logical_name,
        "RequestId": operation,
        "SecondaryEntityName": "none",
        "SharedVariables": [],
        "Stage": 40,
        "UserAzureActiveDirectoryObjectId": "00000000-0000-0000-0000-000000000000",
        "UserId": SEED_USER_ID,
    }
    text = json.dumps(context, ensure_ascii=False, separators=(",", ":"))
    return text.replace("/", "\\/").encode("utf-8")
