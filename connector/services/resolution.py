"""The record resolver: which CRM record an inbound number belongs to.

1. Look the number's key up in the local phone index (no Dataverse request).
2. On a miss, ONE live Dataverse query (a ``$batch`` across the configuration's record
   types, over the formats people type numbers in) so a contact created a minute ago is
   still found; what it finds is added to the index at once. :meth:`prefetch` does this for
   the index misses of a whole claimed batch in one query, and the numbers it found nothing
   for skip their own live query for a few seconds.
3. Pick among the candidates with the routing rules (``connector.domain.routing``).
4. Nothing anywhere: the number's lead, whose id is derived from (configuration, number).
   It is not written here: the message's own change set creates it (create-only, ahead of
   the rows that bind to it, see :meth:`RecordResolutionService.new_lead`), so racing or
   retried first messages all name one row and a lead costs no request of its own; the
   phone index learns it once a change set is confirmed
   (:meth:`~RecordResolutionService.lead_written`).

Implements :class:`connector.ports.RecordResolver`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.domain.conversation import NewLead, lead_id
from connector.domain.phone_records import (
    IndexEntry,
    Normalizer,
    RecordTypeSpec,
    entries_for_row,
)
from connector.domain.record_types import default_specs, specs_for
from connector.domain.routing import (
    Candidate,
    MatchTrace,
    RecordRef,
    Resolution,
    RoutingPolicy,
    SenderContext,
    created_lead,
    decide,
    moved,
)
from connector.errors import ConnectorError
from connector.log_config import get_logger
from connector.ports import PhoneDirectory, PhoneIndexStore, ResolutionMemory

log = get_logger(__name__)

PREFETCH_SECONDS = 10.0
"""How long a prefetch's "nothing live for this number" stands in for resolve's own query."""
PREFETCH_CHUNK = 10
"""Numbers looked up together in one live query (each brings several written forms)."""

SpecsFor = Callable[[SenderContext], Sequence[RecordTypeSpec]]


def _default_specs_for(sender: SenderContext) -> Sequence[RecordTypeSpec]:
    specs = default_specs(sender.default_country)
    if sender.table_priority:
        specs = tuple(s for s in specs if s.table in sender.table_priority)
    return specs


class ConfiguredRecordTypes:
    """The record types each configuration resolves against, read from Dataverse and cached.

    Refreshed after ``ttl``; a configuration without record types (or before the schema is
    installed) uses the default ones. A failed refresh keeps the last answer.
    """

    def __init__(
        self,
        directory: PhoneDirectory,
        *,
        ttl: timedelta = timedelta(minutes=5),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._directory = directory
        self._ttl = ttl
        self._now = now
        self._loaded_at: datetime | None = None
        self._specs: dict[str, tuple[RecordTypeSpec, ...]] = {}

    def for_sender(self, sender: SenderContext) -> Sequence[RecordTypeSpec]:
        """The specs of ``sender``'s configuration (its own country as the last fallback)."""
        now = self._now()
        if self._loaded_at is None or self._loaded_at + self._ttl <= now:
            self._refresh(now)
        return self._specs.get(sender.configuration_id) or _default_specs_for(sender)

    def _refresh(self, now: datetime) -> None:
        try:
            configured = self._directory.configured_record_types()
        except ConnectorError as exc:
            log.warning("resolution.record_types_refresh_failed", code=exc.code)
            if self._loaded_at is None:
                raise
            return
        self._specs = {
            config.id: specs_for(types) for config, types in configured if config.id and types
        }
        self._loaded_at = now


class RecordResolutionService:
    """Index lookup, one live fallback, routing rules, and the derived lead of an unknown number."""

    def __init__(
        self,
        index: PhoneIndexStore,
        memory: ResolutionMemory,
        directory: PhoneDirectory,
        *,
        lookup_key: Callable[[str], str],
        variants: Callable[[str], Sequence[str]],
        normalize: Normalizer,
        specs_for: SpecsFor = _default_specs_for,
        policy: RoutingPolicy | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        team_ttl: timedelta = timedelta(minutes=10),
    ) -> None:
        self._index = index
        self._memory = memory
        self._directory = directory
        self._key = lookup_key
        self._variants = variants
        self._normalize = normalize
        self._specs_for = specs_for
        self._policy = policy or RoutingPolicy()
        self._now = now
        self._team_ttl = team_ttl
        self._teams: dict[str, tuple[datetime, frozenset[str]]] = {}
        self._absent: dict[tuple[str, frozenset[str]], float] = {}
        self._absent_lock = threading.Lock()

    def prefetch(self, phones: Sequence[str], sender: SenderContext) -> None:
        """Look the index misses among ``phones`` up live, up to ``PREFETCH_CHUNK`` numbers per
        request; index what is found and remember, for ``PREFETCH_SECONDS``, the numbers
        nothing was found for (their :meth:`resolve` goes straight to the lead)."""
        specs = self._specs_for(sender)
        tables = frozenset(s.table for s in specs)
        direct = [s for s in specs if s.phone_columns]
        misses = self._index_misses(phones, tables)
        if len(misses) < 2 or not direct:
            return  # one number: resolve's own live query is the same single request
        keys = list(misses)
        for first in range(0, len(keys), PREFETCH_CHUNK):
            chunk = keys[first : first + PREFETCH_CHUNK]
            variants = [v for key in chunk for v in self._variants(misses[key])]
            found = self._directory.find_by_phone(direct, variants)
            hit = {entry.key for entry in self._index_rows(found, direct, sender)}
            at = time.monotonic()
            with self._absent_lock:
                for key in chunk:
                    if key not in hit:
                        self._absent[(key, tables)] = at

    def _index_misses(self, phones: Sequence[str], tables: frozenset[str]) -> dict[str, str]:
        """The numbers among ``phones`` the index has no record of ``tables`` for (and no
        prefetch found absent a moment ago), by lookup key: one index read for them all."""
        wanted: dict[str, str] = {}
        for phone in phones:
            key = self._key(phone)
            if key not in wanted and not self._known_absent(key, tables):
                wanted[key] = phone
        indexed = self._index.lookup_many(list(wanted))
        return {
            key: phone
            for key, phone in wanted.items()
            if not any(c.record.table in tables for c in indexed.get(key, ()))
        }

    def _known_absent(self, key: str, tables: frozenset[str]) -> bool:
        """Whether a prefetch found nothing live for ``key`` a moment ago."""
        with self._absent_lock:
            now = time.monotonic()
            for stale in [k for k, at in self._absent.items() if now - at > PREFETCH_SECONDS]:
                del self._absent[stale]
            return (key, tables) in self._absent

    def _index_rows(
        self,
        found: dict[str, list[dict[str, Any]]],
        direct: Sequence[RecordTypeSpec],
        sender: SenderContext,
    ) -> list[IndexEntry]:
        """Put live rows into the index; the entries they make."""
        by_table = {s.table: s for s in direct}
        made: list[IndexEntry] = []
        for table, rows in found.items():
            spec = by_table.get(table)
            if spec is None:
                continue
            for row in rows:
                entries, _ = entries_for_row(spec, row, sender.default_country, self._normalize)
                if entries:
                    self._index.replace({entries[0].candidate.record: entries})
                made.extend(entries)
        return made

    def resolve(self, phone_e164: str, sender: SenderContext) -> Resolution:
        """The record for ``phone_e164`` texting ``sender`` (creates a lead when unknown)."""
        key = self._key(phone_e164)
        specs = self._specs_for(sender)
        tables = {s.table for s in specs}
        if not sender.table_priority:  # the configuration's record types, in priority order
            sender = replace(sender, table_priority=tuple(s.table for s in specs))
        candidates = [c for c in self._index.lookup(key) if c.record.table in tables]
        source: str = "index"
        if not candidates and not self._known_absent(key, frozenset(tables)):
            candidates, source = self._live(phone_e164, key, specs, sender), "live"
        if not candidates:
            return self._create_lead(phone_e164, key, sender)
        result = decide(
            phone_e164,
            candidates,
            self._with_team(sender),
            last_conversation=self._memory.last_conversations(key),
            policy=self._policy,
            source="live" if source == "live" else "index",
        )
        if result.record is not None:
            self._memory.note_conversation(key, result.record, self._now())
        log.info(
            "resolution.resolved",
            record=str(result.record),
            rule=result.trace.decided_by,
            candidates=len(result.trace.candidates),
            source=source,
        )
        return result

    def note_conversation(
        self, phone_e164: str, record: RecordRef, at: datetime | None = None
    ) -> None:
        """Remember that ``record`` had a conversation with the number."""
        self._memory.note_conversation(self._key(phone_e164), record, at or self._now())

    def move(self, phone_e164: str, target: RecordRef, previous: RecordRef | None) -> MatchTrace:
        """Make ``target`` the number's most recent conversation, so later replies follow it."""
        self.note_conversation(phone_e164, target)
        return moved(phone_e164, target, previous)

    def _live(
        self, phone: str, key: str, specs: Sequence[RecordTypeSpec], sender: SenderContext
    ) -> list[Candidate]:
        direct = [s for s in specs if s.phone_columns]
        if not direct:
            return []
        found = self._directory.find_by_phone(direct, list(self._variants(phone)))
        return [e.candidate for e in self._index_rows(found, direct, sender) if e.key == key]

    def _create_lead(self, phone: str, key: str, sender: SenderContext) -> Resolution:
        """The number's lead, named by its derived id: created by the message's own change
        set (:meth:`new_lead`), so nothing is written here and racing resolutions agree."""
        lead = RecordRef("lead", lead_id(sender.configuration_id, phone))
        log.info("resolution.lead_planned", record=str(lead))
        return created_lead(phone, lead)

    def new_lead(self, phone_e164: str, sender: SenderContext, record: RecordRef) -> NewLead | None:
        """The lead to create with a message regarding ``record``: when ``record`` is the
        number's derived lead and the phone index does not know it yet (not written, or its
        write not confirmed); None otherwise."""
        if record.table != "lead" or record.id != lead_id(sender.configuration_id, phone_e164):
            return None
        if any(c.record == record for c in self._index.lookup(self._key(phone_e164))):
            return None
        return NewLead(record.id, phone_e164, sender.owner_id)

    def lead_written(self, lead: NewLead) -> None:
        """A message's change set confirmed ``lead``: the phone index and the number's
        conversation memory learn it."""
        key = self._key(lead.phone)
        now = self._now()
        ref = RecordRef("lead", lead.lead_id)
        cand = Candidate(
            record=ref,
            name=lead.phone,
            owner_id=lead.owner_id,
            modified_on=now,
            matched_column="mobilephone",
        )
        self._index.replace({ref: [IndexEntry(key, cand)]})
        self._memory.note_conversation(key, ref, now)
        log.info("resolution.lead_created", record=str(ref))

    def _with_team(self, sender: SenderContext) -> SenderContext:
        if sender.team_member_ids or sender.team_id is None:
            return sender
        now = self._now()
        cached = self._teams.get(sender.team_id)
        if cached is None or cached[0] + self._team_ttl < now:
            cached = (now, self._directory.team_members(sender.team_id))
            self._teams[sender.team_id] = cached
        return replace(sender, team_member_ids=cached[1])
