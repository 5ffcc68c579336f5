"""The Dataverse Web API client: the connector's only way into Dataverse.

Operations map one-to-one onto documented Web API requests (see the reference notes):
create (``POST``; the id is read from ``OData-EntityId``, a body is asked for only by
:meth:`DataverseClient.create_returning`), retrieve, update (``PATCH`` with ``If-Match: *``,
never an accidental upsert), upsert and create-only by key (``If-None-Match: *``; a 412 means
the row already exists, which is success for an idempotent write), delete, collection queries
paged through ``@odata.nextLink`` with ``Prefer: odata.maxpagesize``, FetchXML, change-tracking
deltas with ``$deletedEntity`` tombstones, actions and functions, ``$batch``, and raw
metadata requests for the schema installer. HTTP, auth, retries and error mapping live in
:mod:`connector.dataverse.transport`; URLs and bodies are built by the pure modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from connector.dataverse import odata
from connector.dataverse.batch import (
    BatchItem,
    BatchPartResult,
    build_batch,
    operations,
    split_items,
)
from connector.dataverse.batch_results import parse_batch_response
from connector.dataverse.failures import error_for, is_duplicate
from connector.dataverse.paging import (
    MAX_PAGE_SIZE,
    FetchPage,
    change_page,
    fetch_page,
    follow_pages,
    max_page_preference,
    next_fetch,
    rebased_link,
)
from connector.dataverse.transport import Answer, WebApi
from connector.errors import DataverseError, DataverseNotFoundError, StaleLinkError
from connector.ports import ChangePage

Key = odata.KeyValue | Mapping[str, odata.KeyValue]


class DataverseClient:
    """Typed operations over one Dataverse environment's Web API."""

    def __init__(self, api: WebApi, *, page_size: int = MAX_PAGE_SIZE) -> None:
        self.api = api
        self.page_size = page_size

    # -- single rows -----------------------------------------------------------------------

    def create(self, entity_set: str, data: Mapping[str, Any]) -> str:
        """Create a row; returns its id (from ``OData-EntityId``, no body transferred)."""
        answer = self.api.send("POST", odata.identifier(entity_set), json=dict(data))
        row_id = odata.entity_id_from_url(answer.header("OData-EntityId"))
        if row_id is None:
            raise DataverseError(
                f"POST {entity_set} answered {answer.status} without an OData-EntityId",
                status=answer.status,
            )
        return row_id

    def create_returning(
        self, entity_set: str, data: Mapping[str, Any], select: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Create a row and return it (``Prefer: return=representation``, 201 with a body)."""
        query = odata.query_string(odata.query_options(select=select))
        answer = self.api.send(
            "POST",
            odata.identifier(entity_set),
            query=query,
            json=dict(data),
            headers={"Prefer": "return=representation"},
        )
        return dict(answer.json() or {})

    def retrieve(
        self,
        entity_set: str,
        key: Key,
        *,
        select: Iterable[str] | None = None,
        expand: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """One row by id or alternate key; :class:`DataverseNotFoundError` when missing."""
        query = odata.query_string(odata.query_options(select=select, expand=expand))
        answer = self.api.send("GET", odata.entity_path(entity_set, key), query=query)
        return dict(answer.json() or {})

    def retrieve_or_none(
        self, entity_set: str, key: Key, *, select: Iterable[str] | None = None
    ) -> dict[str, Any] | None:
        """One row, or None when it does not exist."""
        try:
            return self.retrieve(entity_set, key, select=select)
        except DataverseNotFoundError:
            return None

    def update(self, entity_set: str, key: Key, data: Mapping[str, Any]) -> None:
        """Update an existing row (``If-Match: *``: a missing row is a 404, not a create)."""
        self.api.send(
            "PATCH", odata.entity_path(entity_set, key), json=dict(data), headers={"If-Match": "*"}
        )

    def upsert(self, entity_set: str, key: Key, data: Mapping[str, Any]) -> str | None:
        """Create or update the row at ``key``; its id when the answer names one by GUID."""
        answer = self.api.send("PATCH", odata.entity_path(entity_set, key), json=dict(data))
        return odata.entity_id_from_url(answer.header("OData-EntityId"))

    def create_only(self, entity_set: str, key: Key, data: Mapping[str, Any]) -> bool:
        """Create the row at ``key`` unless it exists (``If-None-Match: *``).

        True when this call created it, False when it already existed (the 412 answer): a
        repeated delivery of the same write is a success, never a duplicate.
        """
        try:
            self.api.send(
                "PATCH",
                odata.entity_path(entity_set, key),
                json=dict(data),
                headers={"If-None-Match": "*"},
            )
        except DataverseError as exc:
            if is_duplicate(exc):
                return False
            raise
        return True

    def delete(self, entity_set: str, key: Key, *, missing_ok: bool = False) -> bool:
        """Delete a row; False (with ``missing_ok``) when it was already gone."""
        try:
            self.api.send("DELETE", odata.entity_path(entity_set, key))
        except DataverseNotFoundError:
            if missing_ok:
                return False
            raise
        return True

    # -- collections -----------------------------------------------------------------------

    def query(
        self,
        entity_set: str,
        *,
        select: Iterable[str] | None = None,
        filter: odata.Filter | str | None = None,
        orderby: Iterable[str] | None = None,
        top: int | None = None,
        expand: Iterable[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Rows matching the query, fetched page by page as they are consumed."""
        for page in self.query_pages(
            entity_set,
            select=select,
            filter=filter,
            orderby=orderby,
            top=top,
            expand=expand,
            page_size=page_size,
        ):
            yield from page

    def query_pages(
        self,
        entity_set: str,
        *,
        select: Iterable[str] | None = None,
        filter: odata.Filter | str | None = None,
        orderby: Iterable[str] | None = None,
        top: int | None = None,
        expand: Iterable[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows; ``$top`` and ``odata.maxpagesize`` are never sent together."""
        options = odata.query_options(
            select=select, filter=filter, orderby=orderby, top=top, expand=expand
        )
        prefer = None if top is not None else self._max_page(page_size)
        for body in follow_pages(
            self.api, odata.identifier(entity_set), odata.query_string(options), prefer
        ):
            yield list(body.get("value", []))

    def fetch_xml(self, entity_set: str, fetch: str) -> FetchPage:
        """One page of a FetchXML query (page and count are set in the ``<fetch>`` element)."""
        answer = self.api.send(
            "GET",
            odata.identifier(entity_set),
            query=odata.query_string({"fetchXml": fetch}),
            headers={
                "Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.fetchxmlpagingcookie,'
                'Microsoft.Dynamics.CRM.morerecords"'
            },
        )
        return fetch_page(answer.json() or {})

    def fetch_xml_all(self, entity_set: str, fetch: str) -> Iterator[dict[str, Any]]:
        """Every row of a FetchXML query, page after page through the paging cookie."""
        query: str | None = fetch
        while query is not None:
            page = self.fetch_xml(entity_set, query)
            yield from page.rows
            query = next_fetch(query, page)

    def changes(
        self,
        entity_set: str,
        *,
        select: Iterable[str] | None = None,
        delta_link: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[ChangePage]:
        """Change-tracking pages: all rows without ``delta_link``, else changes since it.

        Tombstones (``$deletedEntity``) become ``deleted_ids``; the last page carries the new
        ``@odata.deltaLink`` to store for the next read. A stored ``delta_link`` is re-based
        onto the current Web API base (:func:`rebased_link`); one that cannot be raises
        :class:`StaleLinkError` before any request, so the caller can start over.
        """
        prefer = f"odata.track-changes, {self._max_page(page_size)}"
        if delta_link is None:
            path = odata.identifier(entity_set)
            query = odata.query_string(odata.query_options(select=select))
        else:
            rebased = rebased_link(delta_link)
            if rebased is None:
                raise StaleLinkError(
                    f"stored delta link for {entity_set} is not under a Web API root",
                    details={"entity_set": entity_set},
                )
            path, query = rebased, None
        for body in follow_pages(self.api, path, query, prefer):
            yield change_page(body)

    def _max_page(self, page_size: int | None) -> str:
        return max_page_preference(page_size or self.page_size)

    # -- actions, functions, batches, metadata ---------------------------------------------

    def who_am_i(self) -> dict[str, Any]:
        """``WhoAmI``: the caller's UserId, BusinessUnitId and OrganizationId (a cheap probe)."""
        return dict(self.api.send("GET", "WhoAmI").json() or {})

    def publish_xml(self, parameter_xml: str) -> None:
        """``PublishXml`` (publishing is idempotent, so it may be retried)."""
        self.call_action("PublishXml", {"ParameterXml": parameter_xml}, idempotent=True)

    def call_action(
        self,
        name: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        bound_to: tuple[str, Key | None] | None = None,
        idempotent: bool = False,
    ) -> Any:
        """Run an action: unbound ``POST <Name>`` or bound to a set or a row of it."""
        path = odata.identifier(name)
        if bound_to is not None:
            entity_set, key = bound_to
            target = (
                odata.identifier(entity_set) if key is None else odata.entity_path(entity_set, key)
            )
            path = f"{target}/Microsoft.Dynamics.CRM.{path}"
        answer = self.api.send("POST", path, json=dict(parameters or {}), idempotent=idempotent)
        return answer.json()

    def call_function(self, name: str, parameters: Mapping[str, odata.Scalar] | None = None) -> Any:
        """Run an unbound function: ``GET Name(p=@p)?@p=<literal>`` (values as aliases)."""
        params = dict(parameters or {})
        signature = ",".join(f"{odata.identifier(k)}=@{k}" for k in params)
        query = odata.query_string({f"@{k}": odata.literal(v) for k, v in params.items()})
        return self.api.send("GET", f"{odata.identifier(name)}({signature})", query=query).json()

    def execute_batch(
        self, items: Sequence[BatchItem], *, continue_on_error: bool = False
    ) -> list[BatchPartResult]:
        """Send ``items`` as ``$batch`` requests of at most 1000 operations; one result each."""
        results: list[BatchPartResult] = []
        for group in split_items(items):
            results.extend(self._send_batch(group, continue_on_error))
        return results

    def _send_batch(
        self, items: Sequence[BatchItem], continue_on_error: bool
    ) -> list[BatchPartResult]:
        built = build_batch(items, api_path=self.api.api_path)
        headers = {"Content-Type": built.content_type}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        posts = any(op.method.upper() == "POST" for op in operations(built.items))
        answer = self.api.send(
            "POST", "$batch", data=built.body, headers=headers, idempotent=not posts, accept={400}
        )
        content_type = answer.header("Content-Type") or ""
        if "multipart" not in content_type:
            raise error_for(
                answer.status, answer.headers, answer.content, method="POST", path="$batch"
            )
        return parse_batch_response(content_type, answer.content, built.items)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str | int | None] | None = None,
        solution: str | None = None,
        strong_consistency: bool = False,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """A raw Web API request (metadata: ``EntityDefinitions``, ``RelationshipDefinitions``).

        ``solution`` adds ``MSCRM.SolutionUniqueName`` so created components land in it;
        ``strong_consistency`` reads the newest metadata (``Consistency: Strong``);
        ``timeout`` overrides the configured one (a long metadata write).
        """
        sent = dict(headers or {})
        if solution:
            sent["MSCRM.SolutionUniqueName"] = solution
        if strong_consistency:
            sent["Consistency"] = "Strong"
        return self.api.send(
            method,
            path,
            query=odata.query_string(query) if query else None,
            json=body,
            headers=sent,
            idempotent=idempotent,
            timeout=timeout,
        )
