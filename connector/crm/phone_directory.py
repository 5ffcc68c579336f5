"""The Dataverse :class:`~connector.ports.PhoneDirectory`: what the phone index reads and writes.

Thin I/O over :class:`~connector.dataverse.client.DataverseClient`; the requests themselves
are built by :mod:`connector.crm.phone_queries`. The live fallback sends one ``$batch``
holding one GET per record type (one request against the service-protection limit), with
continue-on-error so a table the caller cannot read does not hide the others.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from connector.crm import tables
from connector.crm.phone_queries import (
    lead_body,
    live_lookup_url,
    team_members_url,
)
from connector.crm.tables import configuration_from_row, record_type_from_row
from connector.dataverse import odata
from connector.dataverse.batch import BatchOperation
from connector.dataverse.client import DataverseClient
from connector.domain.model import Configuration, RecordType
from connector.domain.phone_records import RecordTypeSpec
from connector.domain.record_types import default_specs, specs_for
from connector.errors import DataverseError, DataverseNotFoundError
from connector.log_config import get_logger
from connector.ports import ChangePage

log = get_logger(__name__)

TRACKED_TABLES_URL = (
    "EntityDefinitions?$select=LogicalName&$filter=ChangeTrackingEnabled%20eq%20true"
)


class DataversePhoneDirectory:
    """Reads record types' phone columns and creates leads through the Web API client."""

    def __init__(self, client: DataverseClient, *, page_size: int = 5000) -> None:
        self._client = client
        self._page_size = page_size

    def read_records(
        self, spec: RecordTypeSpec, *, modified_since: datetime | None = None
    ) -> Iterator[ChangePage]:
        """Pages of ``spec``'s rows (all, or modified at or after ``modified_since``)."""
        flt = odata.ge("modifiedon", modified_since) if modified_since is not None else None
        for rows in self._client.query_pages(
            spec.entity_set, select=spec.select(), filter=flt, page_size=self._page_size
        ):
            yield ChangePage(rows)

    def read_changes(self, spec: RecordTypeSpec, delta_link: str | None) -> Iterator[ChangePage]:
        """Change-tracking pages (rows, tombstones, and the next delta link on the last)."""
        yield from self._client.changes(
            spec.entity_set,
            select=spec.select(),
            delta_link=delta_link,
            page_size=self._page_size,
        )

    def find_by_phone(
        self, specs: Sequence[RecordTypeSpec], variants: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Rows per table whose phone columns equal a written form of the number: ONE request."""
        direct = [s for s in specs if s.phone_columns]
        if not direct:
            return {}
        ops = [BatchOperation("GET", live_lookup_url(s, variants)) for s in direct]
        results = self._client.execute_batch(ops, continue_on_error=True)
        found: dict[str, list[dict[str, Any]]] = {}
        for spec, result in zip(direct, results, strict=True):
            if not result.ok:
                log.warning(
                    "resolution.live_lookup_failed",
                    table=spec.table,
                    status=result.status,
                    code=result.error.code if result.error else None,
                )
                continue
            body = result.body if isinstance(result.body, dict) else {}
            found[spec.table] = list(body.get("value", []))
        return found

    def create_lead(self, phone_e164: str, owner_id: str | None) -> str:
        """Create the lead for an unknown number; returns its id."""
        return self._client.create("leads", lead_body(phone_e164, owner_id))

    def configured_record_types(self) -> list[tuple[Configuration, list[RecordType]]]:
        """Every active configuration with its record types (what the phone sync covers).

        Before the solution schema is installed there are none (logged, not an error).
        """
        try:
            configs = [
                configuration_from_row(row)
                for row in self._client.query(tables.CONFIGURATION.entity_set)
            ]
            record_types = [
                record_type_from_row(row)
                for row in self._client.query(tables.RECORD_TYPE.entity_set)
            ]
        except DataverseNotFoundError:
            log.warning("phone_sync.schema_not_installed")
            return []
        return [
            (config, [r for r in record_types if r.configuration_id == config.id])
            for config in configs
            if config.active
        ]

    def sync_targets(self) -> list[tuple[Sequence[RecordTypeSpec], str | None]]:
        """What a phone sync covers: each configuration's record types with its country
        (the default record types when nothing is configured), change tracking switched on
        for the tables that have it."""
        configured = self.configured_record_types()
        targets: list[tuple[Sequence[RecordTypeSpec], str | None]] = [
            (specs_for(types), config.default_country) for config, types in configured
        ] or [(default_specs(), None)]
        tracked = self.tracked_tables()
        return [
            (tuple(replace(s, change_tracking=s.table in tracked) for s in specs), country)
            for specs, country in targets
        ]

    def tracked_tables(self) -> frozenset[str]:
        """Logical names of the tables with change tracking enabled (one metadata request).

        Unknown (an error answer) means none: the sync then uses ``modifiedon``.
        """
        try:
            answer = self._client.request("GET", TRACKED_TABLES_URL)
        except DataverseError as exc:
            if exc.transient:
                raise
            log.warning("phone_sync.change_tracking_unknown", code=exc.code)
            return frozenset()
        rows = (answer.json() or {}).get("value", [])
        return frozenset(str(r["LogicalName"]) for r in rows if r.get("LogicalName"))

    def team_members(self, team_id: str) -> frozenset[str]:
        """Ids of the users in ``team_id``.

        A team that does not exist, or an environment that refuses the membership query, gives
        no members (logged): the team rule then simply does not apply. Transient errors raise.
        """
        try:
            answer = self._client.request("GET", team_members_url(team_id))
        except DataverseError as exc:
            if exc.transient:
                raise
            log.warning("resolution.team_members_unavailable", team=team_id, code=exc.code)
            return frozenset()
        rows = (answer.json() or {}).get("value", [])
        return frozenset(str(r["systemuserid"]) for r in rows if r.get("systemuserid"))
