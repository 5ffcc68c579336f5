"""Thin I/O under the Dataverse client: one HTTP call, authenticated, bounded, retried.

:class:`WebApi` owns what every request shares: the injected ``requests.Session`` (connection
pooling), the base URL ``<org>/api/data/v9.2/``, the documented OData headers, a per-call
timeout, a semaphore capping this process's requests in flight, the service protection
shared with the fleet (:mod:`connector.dataverse.protection`: a 429's pause, the learned
pace, the fleet-wide concurrency cap, well below Dataverse's 52), the token
provider (a 401 refreshes the token once, then fails), the one mapping of unexpected statuses
to errors (:mod:`connector.dataverse.failures`) and the one retry policy
(:mod:`connector.dataverse.retry`). Absolute URLs (``@odata.nextLink``, ``@odata.deltaLink``)
are followed only when they point under the same base, so the bearer token never leaves for
another host. Inside :func:`connector.dataverse.caller.acting_as` requests carry
``CallerObjectId``. Logs carry method, path, status, duration and ``x-ms-service-request-id``;
never the token or query values.
"""

from __future__ import annotations

import json as jsonlib
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from connector.dataverse.auth import TokenProvider
from connector.dataverse.caller import caller_headers
from connector.dataverse.failures import error_for, header, unreachable
from connector.dataverse.protection import ServiceProtection
from connector.dataverse.retry import RetryPolicy
from connector.errors import DataverseError, DataverseThrottledError, InvalidInputError
from connector.log_config import get_logger

BASE_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
}
_IDEMPOTENT_METHODS = {"GET", "PUT", "PATCH", "DELETE"}
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful response, read once: status, headers, raw body."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return jsonlib.loads(self.content) if self.content.strip() else None

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        return header(self.headers, name)


@dataclass(frozen=True, slots=True)
class _Call:
    """One request as the retry loop repeats it (``path`` is the loggable form)."""

    method: str
    url: str
    path: str
    headers: dict[str, str]
    json: Any
    data: bytes | None
    timeout: float
    accept: Collection[int]


class WebApi:
    """Authenticated, throttling-aware HTTP access to one Dataverse environment."""

    def __init__(
        self,
        org_url: str,
        tokens: TokenProvider,
        session: requests.Session,
        *,
        api_version: str = "v9.2",
        timeout: float = 30.0,
        max_concurrency: int = 16,
        retry: RetryPolicy | None = None,
        protection: ServiceProtection | None = None,
    ) -> None:
        self.org_url = org_url.rstrip("/")
        self.base_url = f"{self.org_url}/api/data/{api_version}/"
        self.api_path = f"/api/data/{api_version}/"
        self._tokens = tokens
        self._session = session
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._retry = retry or RetryPolicy()
        self.protection = protection or ServiceProtection(
            self.org_url,
            fleet_cap=max_concurrency,
            clock=self._retry.clock,
            sleep=self._retry.sleep,
        )

    def close(self) -> None:
        """Close the session's pooled connections and leave the fleet's service protection."""
        self._session.close()
        self.protection.close()

    def url_for(self, path: str, query: str | None = None) -> str:
        """The absolute URL of ``path`` (relative to the API root, or absolute under it)."""
        if path.startswith(("http://", "https://")):
            if not path.startswith(self.base_url):
                raise InvalidInputError("refusing to follow a link outside the Web API base")
            url = path
        else:
            url = self.base_url + path.lstrip("/")
        if query:
            url += ("&" if "?" in url else "?") + query
        return url

    def send(
        self,
        method: str,
        path: str,
        *,
        query: str | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotent: bool | None = None,
        accept: Collection[int] = (),
    ) -> Answer:
        """Send one request (retried as the policy allows).

        Any answer other than 2xx or a status in ``accept`` raises the mapped DataverseError.
        """
        method = method.upper()
        url = self.url_for(path, query)
        safe_path = url[len(self.org_url) :].split("?", 1)[0]
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        all_headers = dict(BASE_HEADERS)
        if json is not None:
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        all_headers.update(headers or {})
        all_headers.update(caller_headers())  # CallerObjectId inside caller.acting_as

        call = _Call(
            method, url, safe_path, all_headers, json, data, timeout or self._timeout, accept
        )
        return self._retry.call(
            lambda: self._authenticated(call), idempotent=idempotent, what=f"{method} {safe_path}"
        )

    def _authenticated(self, call: _Call) -> Answer:
        response = self._once(call, refresh=False)
        if response.status_code == 401:
            response.close()
            response = self._once(call, refresh=True)
        if response.status_code >= 300 and response.status_code not in call.accept:
            error = error_for(
                response.status_code,
                response.headers,
                response.content,
                method=call.method,
                path=call.path,
            )
            self._log(call, response, error)
            if isinstance(error, DataverseThrottledError) and error.retry_after:
                self.protection.throttled(error.retry_after)
            raise error
        self._log(call, response, None)
        return Answer(response.status_code, dict(response.headers), response.content)

    def _once(self, call: _Call, *, refresh: bool) -> requests.Response:
        with self._slots:
            self.protection.enter()
            try:
                token = self._tokens.token(refresh=refresh)
                sent = {**call.headers, "Authorization": f"Bearer {token}"}
                response = self._session.request(
                    call.method,
                    call.url,
                    headers=sent,
                    json=call.json,
                    data=call.data,
                    timeout=call.timeout,
                )
                _ = response.content  # read the body while holding the slot
            except requests.RequestException as exc:
                error = unreachable(
                    exc, method=call.method, path=call.path, maybe_applied=_was_sent(exc)
                )
                log.warning(
                    "dataverse.unreachable", method=call.method, path=call.path, error=repr(exc)
                )
                raise error from exc
            finally:
                self.protection.leave()
        return response

    @staticmethod
    def _log(call: _Call, response: requests.Response, error: DataverseError | None) -> None:
        fields = {
            "method": call.method,
            "path": call.path,
            "status": response.status_code,
            "ms": round(response.elapsed.total_seconds() * 1000, 1),
            "request_id": response.headers.get("x-ms-service-request-id"),
        }
        if error is None:
            log.debug("dataverse.request", **fields)
        elif response.status_code == 404:  # existence probes (installer, lookups) expect these
            log.debug("dataverse.request_failed", code=error.service_code, **fields)
        else:
            log.info("dataverse.request_failed", code=error.service_code, **fields)


def _was_sent(exc: requests.RequestException) -> bool:
    """Whether the request may have reached Dataverse before ``exc`` (so may be applied)."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return not isinstance(reason, NewConnectionError | ConnectionRefusedError)
    return True
