"""Keep the phone index in step with Dataverse: full and incremental syncs per record type.

A **full** sync pages through every row of each configured record type, replaces each
record's index entries page by page (the index keeps answering meanwhile) and finally drops
records that no longer exist. An **incremental** sync reads only what changed: through change
tracking (a delta link, deletions included) where the table has it, else rows with
``modifiedon`` at or after the last watermark minus an overlap (``modifiedon`` has one-second
precision and a row can commit after a later-stamped one; re-reading a few rows is harmless,
replacing a record's entries is idempotent). Deactivations arrive as changed rows and are indexed
as inactive (the routing rules still see them). Related record types (an opportunity through
its parent contact or account) are synced after their parents and take the parents' numbers;
when a parent's numbers change, the records found through it are re-keyed.

A phone value that is not a valid number is skipped with a logged reason; it never stops a
sync. Nor does a stored delta link that no longer fits the Web API's base URL: the directory
re-bases it, and one it cannot re-base is dropped for a full resync of that table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from connector.domain.phone_records import (
    IndexEntry,
    Normalizer,
    RecordTypeSpec,
    SyncCursor,
    entries_for_row,
    parent_refs,
    parse_timestamp,
    related_entries,
)
from connector.domain.routing import RecordRef
from connector.errors import StaleLinkError
from connector.log_config import get_logger
from connector.ports import ChangePage, PhoneDirectory, PhoneIndexStore

Mode = Literal["full", "delta", "modifiedon"]
Progress = Callable[[str, int], None]

log = get_logger(__name__)


@dataclass
class TableReport:
    """What one table's sync did."""

    table: str
    mode: Mode
    rows: int = 0
    entries: int = 0
    deleted: int = 0
    skipped: int = 0


@dataclass
class SyncReport:
    """What a sync run did, per table."""

    tables: list[TableReport] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Phone values skipped as invalid, over all tables."""
        return sum(t.skipped for t in self.tables)


class PhoneSync:
    """Runs full or incremental phone-index syncs over the configured record types."""

    def __init__(
        self,
        directory: PhoneDirectory,
        index: PhoneIndexStore,
        normalize: Normalizer,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        overlap: timedelta = timedelta(seconds=60),
    ) -> None:
        self._directory = directory
        self.overlap = overlap
        self._index = index
        self._normalize = normalize
        self._now = now

    def run(
        self,
        specs: Sequence[RecordTypeSpec],
        sender_country: str | None = None,
        *,
        full: bool = False,
        progress: Progress | None = None,
    ) -> SyncReport:
        """Sync every record type in ``specs`` (parents before related types)."""
        report = SyncReport()
        ordered = [s for s in specs if not s.related] + [s for s in specs if s.related]
        for spec in ordered:
            table = _TableSync(self, spec, sender_country, progress)
            report.tables.append(table.run(full=full))
        return report

    # used by _TableSync
    def _entries(
        self, spec: RecordTypeSpec, rows: Sequence[dict[str, Any]], country: str | None
    ) -> tuple[dict[RecordRef, list[IndexEntry]], int]:
        if spec.related:
            parents = self._index.entries_for(parent_refs(spec, rows))
            return {
                RecordRef(spec.table, str(row[spec.id_column])): related_entries(spec, row, parents)
                for row in rows
            }, 0
        out: dict[RecordRef, list[IndexEntry]] = {}
        skipped = 0
        for row in rows:
            entries, bad = entries_for_row(spec, row, country, self._normalize)
            out[RecordRef(spec.table, str(row[spec.id_column]))] = entries
            for item in bad:
                skipped += 1
                log.warning(
                    "phone_sync.invalid_number_skipped",
                    record=str(item.record),
                    column=item.column,
                    reason=item.reason,
                )
        return out, skipped


class _TableSync:
    """One table's sync run (full, delta or modifiedon)."""

    def __init__(
        self,
        sync: PhoneSync,
        spec: RecordTypeSpec,
        country: str | None,
        progress: Progress | None,
    ) -> None:
        self.sync, self.spec, self.country, self.progress = sync, spec, country, progress
        self.index = sync._index
        self.directory = sync._directory
        self.seen: set[str] = set()
        self.watermark: datetime | None = None

    def run(self, *, full: bool) -> TableReport:
        spec = self.spec
        cursor = self.index.cursor(spec.table)
        if not full and spec.change_tracking and cursor.delta_link:
            try:
                return self._apply(TableReport(spec.table, "delta"), cursor, cursor.delta_link)
            except StaleLinkError as exc:  # raised before any page is read or written
                log.warning("phone_sync.delta_link_dropped", table=spec.table, reason=exc.message)
                return self._full(replace(cursor, delta_link=None))
        if not full and not spec.change_tracking and cursor.watermark:
            since = cursor.watermark - self.sync.overlap
            pages = self.directory.read_records(spec, modified_since=since)
            return self._consume(TableReport(spec.table, "modifiedon"), cursor, pages)
        return self._full(cursor)

    def _full(self, cursor: SyncCursor) -> TableReport:
        report = TableReport(self.spec.table, "full")
        if self.spec.change_tracking:
            report = self._apply(report, cursor, None)
        else:
            report = self._consume(report, cursor, self.directory.read_records(self.spec))
        gone = self.index.records_in(self.spec.table) - self.seen
        self._delete(report, sorted(gone))
        saved = self.index.cursor(self.spec.table)
        self.index.save_cursor(replace(saved, full_sync_at=self.sync._now()))
        return report

    def _apply(self, report: TableReport, cursor: SyncCursor, link: str | None) -> TableReport:
        return self._consume(report, cursor, self.directory.read_changes(self.spec, link))

    def _consume(
        self, report: TableReport, cursor: SyncCursor, pages: Iterable[ChangePage]
    ) -> TableReport:
        delta_link = cursor.delta_link
        watermark = cursor.watermark
        for page in pages:
            self._write(report, page.rows)
            self._delete(report, page.deleted_ids)
            delta_link = page.delta_link or delta_link
            for row in page.rows:
                modified = parse_timestamp(row.get("modifiedon"))
                if modified and (watermark is None or modified > watermark):
                    watermark = modified
            if self.progress:
                self.progress(self.spec.table, report.rows)
        self.index.save_cursor(replace(cursor, delta_link=delta_link, watermark=watermark))
        return report

    def _write(self, report: TableReport, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        entries, skipped = self.sync._entries(self.spec, rows, self.country)
        report.rows += len(rows)
        report.skipped += skipped
        report.entries += self.index.replace(entries)
        self.seen.update(ref.id for ref in entries)
        if not self.spec.related:
            self._rekey_related(list(entries))

    def _delete(self, report: TableReport, ids: Sequence[str]) -> None:
        if ids:
            self.index.delete([RecordRef(self.spec.table, i) for i in ids])
            report.deleted += len(ids)

    def _rekey_related(self, parents: list[RecordRef]) -> None:
        """Records found through ``parents`` take the parents' current numbers."""
        via = self.index.entries_via(parents)
        if not via:
            return
        all_parents = sorted(
            {e.candidate.via for es in via.values() for e in es if e.candidate.via}
        )
        parent_entries = self.index.entries_for(all_parents)
        rebuilt: dict[RecordRef, list[IndexEntry]] = {}
        for record, old in via.items():
            templates = {e.candidate.via: e.candidate for e in old if e.candidate.via}
            rebuilt[record] = [
                IndexEntry(p.key, replace(tmpl, matched_column=_label(parent, p)))
                for parent, tmpl in templates.items()
                for p in parent_entries.get(parent, ())
            ]
        self.index.replace(rebuilt)


def _label(parent: RecordRef, entry: IndexEntry) -> str:
    return f"{parent.table}.{entry.candidate.matched_column}"


@dataclass
class PhoneSyncJob:
    """A sync bound to where its record types come from (the configurations), for the CLI
    and the periodic job: ``specs`` returns (record-type specs, sender country) pairs."""

    sync: PhoneSync
    specs: Callable[[], Sequence[tuple[Sequence[RecordTypeSpec], str | None]]]

    def run(self, *, full: bool = False, progress: Progress | None = None) -> SyncReport:
        """Sync every configuration's record types; a table shared by several syncs once."""
        report = SyncReport()
        done: set[str] = set()
        for specs, country in self.specs():
            todo = [s for s in specs if s.table not in done]
            done.update(s.table for s in todo)
            report.tables.extend(self.sync.run(todo, country, full=full, progress=progress).tables)
        return report
