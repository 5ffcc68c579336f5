"""The Dataverse :class:`~connector.ports.ConfigurationStore`: configuration rows and defaults.

A configuration is written by its alternate key (``smsc_senderkey``: the sender number without
``+``) with one upsert, so two setups of the same sender never make two rows. Record types and
keywords are found by their configuration lookup and upserted by their alternate keys
(configuration + table, configuration + keyword), so a racing duplicate updates the same row.
Row <-> model conversion is :mod:`connector.crm.tables`'.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from connector.crm import tables
from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.domain.model import Configuration, Keyword, RecordType
from connector.errors import DataverseError


class DataverseConfigurationStore:
    """Reads and upserts the connector's configuration rows through the Web API."""

    def __init__(self, client: DataverseClient) -> None:
        self.client = client

    def find_configuration(self, sender_number: str) -> Configuration | None:
        """The row whose sender key, or sender number as an admin typed it, matches."""
        key = sender_number.removeprefix("+")
        match = odata.or_(
            odata.eq("smsc_senderkey", key),
            odata.eq("smsc_sendernumber", f"+{key}"),
            odata.eq("smsc_sendernumber", key),
        )
        rows = list(self.client.query(tables.CONFIGURATION.entity_set, filter=match, top=2))
        if not rows:
            return None
        return tables.configuration_from_row(rows[0])

    def save_configuration(self, config: Configuration) -> Configuration:
        """Upsert by sender key (or update the row by id when it was found by number)."""
        row = tables.configuration_to_row(config)
        entity_set = tables.CONFIGURATION.entity_set
        if config.id:
            self.client.update(entity_set, uuid.UUID(config.id), row)
            return config
        key = {"smsc_senderkey": config.sender_key}
        row_id = self.client.upsert(entity_set, key, row)
        if row_id is None:
            found = self.client.retrieve(entity_set, key, select=[tables.CONFIGURATION.id_column])
            row_id = str(found[tables.CONFIGURATION.id_column])
        return replace(config, id=row_id)

    def _rows(self, table: tables.Table, configuration_id: str) -> list[dict[str, Any]]:
        match = odata.eq(table.value(tables.CONFIGURATION_LOOKUP), uuid.UUID(configuration_id))
        return list(self.client.query(table.entity_set, filter=match))

    def _save(
        self, table: tables.Table, key: dict[str, Any], row_id: str | None, row: dict[str, Any]
    ) -> str:
        """Update by id when known, else upsert by the alternate key and read the id back."""
        if row_id:
            self.client.update(table.entity_set, uuid.UUID(row_id), row)
            return row_id
        self.client.upsert(table.entity_set, key, row)
        found = self.client.retrieve(table.entity_set, key, select=[table.id_column])
        return str(found[table.id_column])

    def record_types(self, configuration_id: str) -> list[RecordType]:
        """The configuration's record types, by priority."""
        found = [
            tables.record_type_from_row(r) for r in self._rows(tables.RECORD_TYPE, configuration_id)
        ]
        return sorted(found, key=lambda rt: rt.priority)

    def save_record_type(self, record_type: RecordType) -> RecordType:
        """Create or update one record type (alternate key: configuration + table)."""
        if record_type.configuration_id is None:
            raise DataverseError("a record type needs its configuration id")
        key = _key(tables.RECORD_TYPE_KEY, record_type.configuration_id, record_type.table)
        row = tables.record_type_to_row(record_type)
        row_id = self._save(tables.RECORD_TYPE, key, record_type.id, row)
        return replace(record_type, id=row_id)

    def keywords(self, configuration_id: str) -> list[Keyword]:
        """The configuration's keywords."""
        return [tables.keyword_from_row(r) for r in self._rows(tables.KEYWORD, configuration_id)]

    def save_keyword(self, keyword: Keyword) -> Keyword:
        """Create or update one keyword (alternate key: configuration + keyword)."""
        if keyword.configuration_id is None:
            raise DataverseError("a keyword needs its configuration id")
        key = _key(tables.KEYWORD_KEY, keyword.configuration_id, keyword.normalized)
        row_id = self._save(tables.KEYWORD, key, keyword.id, tables.keyword_to_row(keyword))
        return replace(keyword, id=row_id, keyword=keyword.normalized)

    def save_secret(self, configuration_id: str, stored: str) -> None:
        """Replace the stored secret of one configuration (nothing else is written)."""
        entity_set = tables.CONFIGURATION.entity_set
        self.client.update(entity_set, uuid.UUID(configuration_id), {"smsc_secret": stored})


def _key(columns: tuple[str, ...], configuration_id: str, value: str) -> dict[str, Any]:
    """An alternate key of (configuration lookup, one text column), as a URL names it: the
    lookup part by its lookup property, ``_<column>_value`` (Dataverse's documented form)."""
    lookup, column = columns
    return {f"_{lookup}_value": uuid.UUID(configuration_id), column: value}
