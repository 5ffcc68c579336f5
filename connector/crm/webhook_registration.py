"""The Dataverse webhook registration: a ``serviceendpoint`` and its ``sdkmessageprocessingstep``.

A webhook is two ordinary rows, written through the Web API (section 11 of the Web API notes):
the service endpoint (contract 8 Webhook, the URL, HttpHeader auth carrying the key, JSON
messages) and one step (the Create message filtered to ``smsc_message``, asynchronous,
post-operation, its system job deleted when it succeeds) whose ``eventhandler`` is the
endpoint. :meth:`DataverseWebhookRegistration.ensure` makes them so, idempotently, like
``schema apply``: it reads first and writes only what differs, so a second run changes
nothing. The key cannot be read back (``authvalue`` is write-only), so it is written when the
endpoint is created, when the caller says the key changed (a rotation) and when Dataverse
says none is set. :meth:`~DataverseWebhookRegistration.remove` deletes the step, then the
endpoint. Created rows join the solution (``MSCRM.SolutionUniqueName``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from connector.crm import tables
from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.errors import ConfigurationError

ENDPOINT_NAME = "SMS connector: outbound SMS created in Dataverse"
STEP_NAME = f"SMS connector: Create of {tables.MESSAGE.logical_name}"
KEY_HEADER = "x-smsc-webhook-key"  # the route reads it (connector.api.dataverse_webhook)
CONTRACT_WEBHOOK = 8
AUTH_HTTP_HEADER = 5
MESSAGE_FORMAT_JSON = 2
USER_CLAIM_NONE = 1
STAGE_POST_OPERATION = 40
MODE_ASYNCHRONOUS = 1
SERVER_ONLY = 0
CREATE = "Create"
ENDPOINTS = "serviceendpoints"
STEPS = "sdkmessageprocessingsteps"
MESSAGES = "sdkmessages"
FILTERS = "sdkmessagefilters"
_ENDPOINT_COLUMNS = ("serviceendpointid", "name", "url", "contract", "authtype")
_ENDPOINT_READ = (*_ENDPOINT_COLUMNS, "messageformat", "isauthvalueset")
_STEP_READ = ("sdkmessageprocessingstepid", "name", "stage", "mode", "statecode",
              "_sdkmessagefilterid_value")  # fmt: skip


def header_auth(key: str) -> str:
    """The ``authvalue`` of HttpHeader auth: one ``<setting>`` per header, value escaped."""
    value = escape(key, {'"': "&quot;"})
    return f'<settings><setting name="{KEY_HEADER}" value="{value}" /></settings>'


def endpoint_row(url: str, key: str | None) -> dict[str, Any]:
    """The service endpoint's columns (``key`` None: leave the stored key as it is)."""
    row: dict[str, Any] = {
        "name": ENDPOINT_NAME,
        "contract": CONTRACT_WEBHOOK,
        "url": url,
        "authtype": AUTH_HTTP_HEADER,
        "messageformat": MESSAGE_FORMAT_JSON,
        "userclaim": USER_CLAIM_NONE,
        "description": "Posts each new SMS message row to the SMS connector, which sends "
        "outbound rows that are queued.",
    }
    if key is not None:
        row["authvalue"] = header_auth(key)
    return row


def step_row(endpoint_id: str, message_id: str, filter_id: str) -> dict[str, Any]:
    """The step: Create of the message table, asynchronous, post-operation, server only."""
    return {
        "name": STEP_NAME,
        "description": "Outbound SMS created in Dataverse: sent by the SMS connector.",
        "eventhandler_serviceendpoint@odata.bind": odata.bind(ENDPOINTS, endpoint_id),
        "sdkmessageid@odata.bind": odata.bind(MESSAGES, message_id),
        "sdkmessagefilterid@odata.bind": odata.bind(FILTERS, filter_id),
        "stage": STAGE_POST_OPERATION,
        "mode": MODE_ASYNCHRONOUS,
        "rank": 1,
        "supporteddeployment": SERVER_ONLY,
        "asyncautodelete": True,
    }


@dataclass
class RegistrationReport:
    """What a run found and changed (``changes``: one line per write)."""

    endpoint_id: str | None = None
    step_id: str | None = None
    changes: list[str] = field(default_factory=list)


class DataverseWebhookRegistration:
    """Registers, updates and removes the connector's webhook in one environment."""

    def __init__(
        self, client: DataverseClient, *, solution: str = tables.SOLUTION_UNIQUE_NAME
    ) -> None:
        self._client = client
        self._solution = solution

    def ensure(self, url: str, key: str, *, key_changed: bool) -> RegistrationReport:
        """The endpoint at ``url`` with ``key`` and its step, writing only what differs."""
        report = RegistrationReport()
        endpoint = self._endpoint()
        if endpoint is None:
            report.endpoint_id = self._create(ENDPOINTS, endpoint_row(url, key))
            report.changes.append(f"created service endpoint {report.endpoint_id}")
        else:
            report.endpoint_id = str(endpoint["serviceendpointid"])
            wanted = endpoint_row(url, key if key_changed else None)
            differs = {
                name: value
                for name, value in wanted.items()
                if name in _ENDPOINT_READ and endpoint.get(name) != value
            }
            if key_changed or not endpoint.get("isauthvalueset"):
                differs["authvalue"] = header_auth(key)
            if differs:
                self._client.update(ENDPOINTS, report.endpoint_id, differs)
                report.changes.append(f"updated service endpoint ({', '.join(sorted(differs))})")
        self._ensure_step(report)
        return report

    def remove(self) -> RegistrationReport:
        """Delete the step(s) and the endpoint; nothing to delete is not an error."""
        report = RegistrationReport()
        endpoint = self._endpoint()
        if endpoint is None:
            return report
        report.endpoint_id = str(endpoint["serviceendpointid"])
        for step in self._steps(report.endpoint_id):
            step_id = str(step["sdkmessageprocessingstepid"])
            if self._client.delete(STEPS, step_id, missing_ok=True):
                report.changes.append(f"deleted step {step_id}")
        if self._client.delete(ENDPOINTS, report.endpoint_id, missing_ok=True):
            report.changes.append(f"deleted service endpoint {report.endpoint_id}")
        return report

    # -- steps ---------------------------------------------------------------------------

    def _ensure_step(self, report: RegistrationReport) -> None:
        assert report.endpoint_id is not None
        message_id, filter_id = self._message_and_filter()
        steps = self._steps(report.endpoint_id)
        mine = [s for s in steps if str(s.get("_sdkmessagefilterid_value")) == filter_id]
        if not mine:
            body = step_row(report.endpoint_id, message_id, filter_id)
            report.step_id = self._create(STEPS, body)
            report.changes.append(f"created step {report.step_id}")
            return
        step = mine[0]
        report.step_id = str(step["sdkmessageprocessingstepid"])
        wanted = {"stage": STAGE_POST_OPERATION, "mode": MODE_ASYNCHRONOUS, "statecode": 0}
        differs = {name: value for name, value in wanted.items() if step.get(name) != value}
        if differs:
            if "statecode" in differs:
                differs["statuscode"] = 1  # Enabled
            self._client.update(STEPS, report.step_id, differs)
            report.changes.append(f"updated step ({', '.join(sorted(differs))})")

    def _message_and_filter(self) -> tuple[str, str]:
        messages = list(
            self._client.query(
                MESSAGES, select=["sdkmessageid", "name"], filter=odata.eq("name", CREATE), top=1
            )
        )
        if not messages:
            raise ConfigurationError("Dataverse has no Create message (sdkmessages)")
        message_id = str(messages[0]["sdkmessageid"])
        table = tables.MESSAGE.logical_name
        filters = list(
            self._client.query(
                FILTERS,
                select=["sdkmessagefilterid", "primaryobjecttypecode"],
                filter=odata.and_(
                    odata.eq("primaryobjecttypecode", table),
                    odata.eq("_sdkmessageid_value", uuid.UUID(message_id)),
                ),
                top=1,
            )
        )
        if not filters:
            raise ConfigurationError(
                f"Dataverse has no Create filter for {table}: run `connector schema apply` "
                "first (a table created moments ago may take a little while to get one)"
            )
        return message_id, str(filters[0]["sdkmessagefilterid"])

    def _endpoint(self) -> Mapping[str, Any] | None:
        found = list(
            self._client.query(
                ENDPOINTS,
                select=_ENDPOINT_READ,
                filter=odata.and_(
                    odata.eq("name", ENDPOINT_NAME), odata.eq("contract", CONTRACT_WEBHOOK)
                ),
                top=1,
            )
        )
        return found[0] if found else None

    def _steps(self, endpoint_id: str) -> list[dict[str, Any]]:
        return list(
            self._client.query(
                STEPS,
                select=_STEP_READ,
                filter=odata.eq("_eventhandler_value", uuid.UUID(endpoint_id)),
            )
        )

    def _create(self, entity_set: str, body: Mapping[str, Any]) -> str:
        answer = self._client.request("POST", entity_set, body=dict(body), solution=self._solution)
        created = odata.entity_id_from_url(answer.header("OData-EntityId"))
        if created is None:
            raise ConfigurationError(f"POST {entity_set} answered without an OData-EntityId")
        return created
