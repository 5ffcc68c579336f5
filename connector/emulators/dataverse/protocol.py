"""Framework-free request and response values, plus the Web API's error envelope.

The emulator's handlers take an :class:`EmuRequest` and return an :class:`EmuResponse`, so
the same code serves real HTTP (through the Starlette app) and the inner requests of a
``$batch`` body, and unit tests can call it without sockets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from connector.emulators.dataverse.errors import EmulatorRequestError

API_PREFIX = "/api/data/v9.2"
JSON_TYPE = "application/json; odata.metadata=minimal"
MAX_BODY = 16 * 1024 * 1024


@dataclass
class EmuRequest:
    """One Web API request: ``path`` is relative to ``/api/data/v9.2/`` and still encoded."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str
    content_ids: dict[str, str] | None = None

    @classmethod
    def build(
        cls,
        method: str,
        path: str,
        raw_query: str,
        headers: dict[str, str],
        *,
        body: bytes,
        base_url: str,
    ) -> EmuRequest:
        """Normalise header names to lowercase and decode the query string."""
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query[name] = value
        lowered = {name.lower(): value for name, value in headers.items()}
        return cls(method.upper(), path, query, lowered, body, base_url.rstrip("/"))

    @property
    def api_root(self) -> str:
        """Absolute URL of ``/api/data/v9.2``."""
        return self.base_url + API_PREFIX

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower())

    def prefer(self) -> dict[str, str]:
        """The ``Prefer`` header as a dict (``odata.maxpagesize`` -> ``'50'``)."""
        result: dict[str, str] = {}
        for raw in (self.header("prefer") or "").split(","):
            if not raw.strip():
                continue
            name, _, value = raw.strip().partition("=")
            result[name.strip().lower()] = value.strip().strip('"')
        return result

    def json(self) -> dict[str, Any]:
        """The JSON object body; 400 in the Web API's words when it is not one."""
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise EmulatorRequestError(
                400, "0x80048d19", "Error identified in Payload provided by the user for Entity"
            ) from exc
        if not isinstance(data, dict):
            raise EmulatorRequestError(400, "0x80048d19", "The payload must be a JSON object.")
        return data


@dataclass
class EmuResponse:
    """Status, headers and body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def of_json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> EmuResponse:
        """A JSON response with the OData content type."""
        merged = {"Content-Type": JSON_TYPE, "OData-Version": "4.0", **(headers or {})}
        return cls(status, merged, json.dumps(data, separators=(",", ":")).encode())

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> EmuResponse:
        """A response without a body."""
        return cls(status, {"OData-Version": "4.0", **(headers or {})})

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def fault_response(fault: EmulatorRequestError) -> EmuResponse:
    """The Web API error envelope ``{"error": {"code", "message"}}``."""
    body = {"error": {"code": fault.service_code, "message": fault.message}}
    return EmuResponse.of_json(fault.status, body, fault.headers)


def not_found(table: str, record_id: str) -> EmulatorRequestError:
    """404 ``0x80040217`` for a missing row, worded as Dataverse words it."""
    return EmulatorRequestError(404, "0x80040217", f"{table} With Id = {record_id} Does Not Exist")


def bad_request(message: str, code: str = "0x80060888") -> EmulatorRequestError:
    """400 with the OData payload/URL error code by default."""
    return EmulatorRequestError(400, code, message)


def decode_segment(segment: str) -> str:
    """Percent-decode one path segment (``+`` stays a plus inside a path)."""
    return unquote(segment)
