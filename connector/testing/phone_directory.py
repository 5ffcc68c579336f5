"""An in-memory :class:`~connector.ports.PhoneDirectory` (shipped fake for tests and demos).

Holds CRM rows per table, pages them like Dataverse, keeps a change log so delta reads return
changed rows and deletion tombstones, matches phone columns exactly (Dataverse filters do not
normalize), and counts the requests a real directory would have made so tests can assert on
the request budget (one request per page, one per live lookup, one per created lead).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.domain.model import Configuration, RecordType
from connector.domain.phone_records import RecordTypeSpec, parse_timestamp
from connector.ports import ChangePage


@dataclass
class FakePhoneDirectory:
    """Rows per table; ``requests`` counts what Dataverse would have been asked."""

    page_size: int = 100
    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    teams: dict[str, frozenset[str]] = field(default_factory=dict)
    configurations: list[tuple[Configuration, list[RecordType]]] = field(default_factory=list)
    requests: int = 0
    created_leads: list[dict[str, Any]] = field(default_factory=list)
    _version: int = 0
    _changes: list[tuple[int, str, str, bool]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, table: str, row: dict[str, Any], id_column: str) -> None:
        """Create or update a row (stamps ``modifiedon`` when missing)."""
        row.setdefault("modifiedon", datetime.now(UTC).isoformat())
        row.setdefault("statecode", 0)
        with self._lock:
            self.rows.setdefault(table, {})[str(row[id_column])] = row
            self._version += 1
            self._changes.append((self._version, table, str(row[id_column]), False))

    def remove(self, table: str, row_id: str) -> None:
        """Delete a row (a tombstone for delta readers)."""
        with self._lock:
            self.rows.get(table, {}).pop(row_id, None)
            self._version += 1
            self._changes.append((self._version, table, row_id, True))

    def read_records(
        self, spec: RecordTypeSpec, *, modified_since: datetime | None = None
    ) -> Iterator[ChangePage]:
        """Pages of rows, optionally only those modified at or after ``modified_since``."""
        rows = list(self.rows.get(spec.table, {}).values())
        if modified_since is not None:
            rows = [r for r in rows if _after(r.get("modifiedon"), modified_since)]
        yield from self._pages([_project(spec, r) for r in rows])

    def read_changes(self, spec: RecordTypeSpec, delta_link: str | None) -> Iterator[ChangePage]:
        """Everything (no link) or the changes since the link's version, then a new link."""
        with self._lock:
            version = self._version
            since = int(delta_link.rsplit("=", 1)[1]) if delta_link else None
            changes = [c for c in self._changes if c[1] == spec.table and c[0] <= version]
        table = self.rows.get(spec.table, {})
        if since is None:
            rows, deleted = list(table.values()), []
        else:
            touched = {c[2]: c[3] for c in changes if c[0] > since}
            rows = [table[i] for i, gone in touched.items() if not gone and i in table]
            deleted = [i for i, gone in touched.items() if gone]
        pages = list(self._pages([_project(spec, r) for r in rows]))
        link = f"fake://{spec.entity_set}?$deltatoken={version}"
        last = pages[-1]
        pages[-1] = ChangePage(last.rows, deleted, link)
        yield from pages

    def find_by_phone(
        self, specs: Sequence[RecordTypeSpec], variants: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Rows whose phone columns equal a variant exactly (one request, like one $batch)."""
        self.requests += 1
        wanted = set(variants)
        return {
            spec.table: [
                _project(spec, row)
                for row in self.rows.get(spec.table, {}).values()
                if any(row.get(col) in wanted for col in spec.phone_columns)
            ]
            for spec in specs
        }

    def create_lead(self, phone_e164: str, owner_id: str | None) -> str:
        """Create a lead row carrying the number."""
        self.requests += 1
        lead_id = str(uuid.uuid4())
        row = {"leadid": lead_id, "mobilephone": phone_e164, "fullname": phone_e164}
        if owner_id:
            row["_ownerid_value"] = owner_id
        self.put("lead", row, "leadid")
        with self._lock:
            self.created_leads.append(row)
        return lead_id

    def team_members(self, team_id: str) -> frozenset[str]:
        """Users of ``team_id``."""
        self.requests += 1
        return self.teams.get(team_id, frozenset())

    def configured_record_types(self) -> list[tuple[Configuration, list[RecordType]]]:
        """The configurations set on the fake (one request, like a read of the rows)."""
        self.requests += 1
        return list(self.configurations)

    def _pages(self, rows: list[dict[str, Any]]) -> Iterator[ChangePage]:
        for start in range(0, max(len(rows), 1), self.page_size):
            self.requests += 1
            yield ChangePage(rows[start : start + self.page_size])


def _project(spec: RecordTypeSpec, row: dict[str, Any]) -> dict[str, Any]:
    keep = set(spec.select()) | {"_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"}
    return {k: v for k, v in row.items() if k in keep}


def _after(value: object, since: datetime) -> bool:
    stamp = parse_timestamp(value)
    return stamp is not None and stamp >= since
