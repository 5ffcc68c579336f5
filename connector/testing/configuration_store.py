"""An in-memory :class:`~connector.ports.ConfigurationStore` (the shipped fake).

Rows are kept by the same alternate keys Dataverse uses (sender key; configuration and table;
configuration and keyword), so saving twice leaves one row, as it does in Dataverse. ``writes``
counts saves, so tests can assert that a second setup run wrote nothing it did not need to.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from connector.domain.model import Configuration, Keyword, RecordType


@dataclass
class InMemoryConfigurationStore:
    """Configuration, record type and keyword rows in dictionaries."""

    configurations: dict[str, Configuration] = field(default_factory=dict)
    record_type_rows: dict[tuple[str, str], RecordType] = field(default_factory=dict)
    keyword_rows: dict[tuple[str, str], Keyword] = field(default_factory=dict)
    writes: int = 0

    def find_configuration(self, sender_number: str) -> Configuration | None:
        """The configuration whose sender key matches ``sender_number``."""
        return self.configurations.get(sender_number.removeprefix("+"))

    def save_configuration(self, config: Configuration) -> Configuration:
        """Upsert by sender key."""
        self.writes += 1
        current = self.configurations.get(config.sender_key)
        saved = replace(config, id=current.id if current else str(uuid.uuid4()))
        self.configurations[config.sender_key] = saved
        return saved

    def record_types(self, configuration_id: str) -> list[RecordType]:
        """The record types of one configuration, by priority."""
        rows = [r for (c, _), r in self.record_type_rows.items() if c == configuration_id]
        return sorted(rows, key=lambda r: r.priority)

    def save_record_type(self, record_type: RecordType) -> RecordType:
        """Upsert by (configuration, table)."""
        self.writes += 1
        key = (str(record_type.configuration_id), record_type.table)
        current = self.record_type_rows.get(key)
        saved = replace(record_type, id=current.id if current else str(uuid.uuid4()))
        self.record_type_rows[key] = saved
        return saved

    def keywords(self, configuration_id: str) -> list[Keyword]:
        """The keywords of one configuration."""
        return [k for (c, _), k in self.keyword_rows.items() if c == configuration_id]

    def save_keyword(self, keyword: Keyword) -> Keyword:
        """Upsert by (configuration, keyword)."""
        self.writes += 1
        key = (str(keyword.configuration_id), keyword.normalized)
        current = self.keyword_rows.get(key)
        saved = replace(
            keyword, keyword=keyword.normalized, id=current.id if current else str(uuid.uuid4())
        )
        self.keyword_rows[key] = saved
        return saved

    def save_secret(self, configuration_id: str, stored: str) -> None:
        """Replace one configuration's stored secret."""
        self.writes += 1
        for key, config in self.configurations.items():
            if config.id == configuration_id:
                self.configurations[key] = replace(config, secret=stored)
