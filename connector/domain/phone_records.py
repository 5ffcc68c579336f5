"""What the phone index is made of, and how a CRM row becomes index entries (pure).

A record type says which table to read and which phone columns it has (or, for a related
record type such as opportunity, which lookup columns lead to a parent that has them).
:func:`entries_for_row` turns one Dataverse row into :class:`IndexEntry` values: each phone
column is normalized with the record's own country, then the record type's default country,
then the sender's; a value that is not a valid number is skipped with a reason, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from connector.domain.routing import Candidate, RecordRef
from connector.errors import InvalidPhoneNumberError

OWNER_TYPE_ANNOTATION = "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"

Normalizer = Callable[[str, Sequence[str | None]], str]
"""``(raw, regions) -> lookup key``; raises :class:`InvalidPhoneNumberError` for junk."""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One number of one record: the key it is found by and the candidate it yields."""

    key: str
    candidate: Candidate


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """Where the incremental sync of one table resumes (delta link or ``modifiedon``)."""

    table: str
    delta_link: str | None = None
    watermark: datetime | None = None
    full_sync_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RecordTypeSpec:
    """How one table is read for the phone index.

    ``phone_columns`` are read directly; ``parent_columns`` (lookup value columns such as
    ``_parentcontactid_value`` mapped to the parent's table) make a related record type: its
    numbers are those of its parents. ``country_column`` holds the record's own ISO region.
    """

    table: str
    entity_set: str
    id_column: str
    name_column: str
    phone_columns: tuple[str, ...] = ()
    parent_columns: Mapping[str, str] = field(default_factory=dict)
    country_column: str | None = None
    default_country: str | None = None
    change_tracking: bool = False
    compliance_column: str | None = None

    @property
    def related(self) -> bool:
        """Found through parent records rather than its own phone columns."""
        return bool(self.parent_columns) and not self.phone_columns

    def select(self) -> tuple[str, ...]:
        """The columns a sync query asks for."""
        base = (self.id_column, self.name_column, "_ownerid_value", "statecode", "modifiedon")
        extra = (*self.phone_columns, *self.parent_columns)
        country = (self.country_column,) if self.country_column else ()
        return base + extra + country


@dataclass(frozen=True, slots=True)
class Skipped:
    """A phone value that was not indexed, and why (for the sync log)."""

    record: RecordRef
    column: str
    reason: str


def candidate_from_row(spec: RecordTypeSpec, row: Mapping[str, Any], column: str) -> Candidate:
    """The routing candidate for ``row`` matched on ``column``."""
    owner = row.get("_ownerid_value")
    return Candidate(
        record=RecordRef(spec.table, str(row[spec.id_column])),
        name=str(row.get(spec.name_column) or ""),
        owner_id=str(owner) if owner else None,
        owner_is_team=row.get(OWNER_TYPE_ANNOTATION) == "team",
        active=row.get("statecode", 0) in (0, None),
        modified_on=parse_timestamp(row.get("modifiedon")),
        matched_column=column,
    )


def entries_for_row(
    spec: RecordTypeSpec,
    row: Mapping[str, Any],
    sender_country: str | None,
    normalize: Normalizer,
) -> tuple[list[IndexEntry], list[Skipped]]:
    """Index entries for a row's own phone columns, and the values skipped as invalid."""
    regions = region_chain(row.get(spec.country_column or ""), spec.default_country, sender_country)
    entries: list[IndexEntry] = []
    skipped: list[Skipped] = []
    for column in spec.phone_columns:
        raw = row.get(column)
        if not isinstance(raw, str) or not raw.strip():
            continue
        cand = candidate_from_row(spec, row, column)
        try:
            key = normalize(raw, regions)
        except InvalidPhoneNumberError as exc:
            skipped.append(Skipped(cand.record, column, exc.reason))
            continue
        entries.append(IndexEntry(key, cand))
    return entries, skipped


def related_entries(
    spec: RecordTypeSpec,
    row: Mapping[str, Any],
    parents: Mapping[RecordRef, Sequence[IndexEntry]],
) -> list[IndexEntry]:
    """Entries for a related record (an opportunity) from its parents' entries."""
    entries: list[IndexEntry] = []
    for column, parent_table in spec.parent_columns.items():
        parent_id = row.get(column)
        if not parent_id:
            continue
        parent = RecordRef(parent_table, str(parent_id))
        for entry in parents.get(parent, ()):
            label = f"{parent_table}.{entry.candidate.matched_column}"
            cand = replace(candidate_from_row(spec, row, label), via=parent)
            entries.append(IndexEntry(entry.key, cand))
    return entries


def parent_refs(spec: RecordTypeSpec, rows: Sequence[Mapping[str, Any]]) -> list[RecordRef]:
    """Every parent record the related ``rows`` point to."""
    refs = {
        RecordRef(table, str(row[column]))
        for row in rows
        for column, table in spec.parent_columns.items()
        if row.get(column)
    }
    return sorted(refs)


def region_chain(*regions: object) -> tuple[str | None, ...]:
    """The non-empty two-letter ISO regions among ``regions``, in order, upper-cased."""
    out: list[str | None] = []
    for region in regions:
        if isinstance(region, str) and len(region.strip()) == 2 and region.strip().isalpha():
            code = region.strip().upper()
            if code not in out:
                out.append(code)
    return tuple(out)


def parse_timestamp(value: object) -> datetime | None:
    """A Dataverse ``modifiedon`` (``2025-01-02T03:04:05Z``) as an aware datetime."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
