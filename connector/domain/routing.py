"""Which CRM record a phone number belongs to: data-driven priority rules and a match trace.

Pure code (no I/O). When several records carry the number a message came from, the
Dynamics 365 Sales order decides (product design, section 4.3):

1. ``recent_conversation`` - the record with the most recent conversation with this number;
2. ``sender_owner`` - owned by the user who owns the sender / configuration;
3. ``team_member`` - owned by the sender's team or by a member of it;
4. ``table_priority`` - record-type priority (contact, account, opportunity, lead by default);
5. ``active`` - active over inactive;
6. ``recently_modified`` - most recently modified.

Each rule is a *score* per candidate (higher wins). The rules run in order as filters: a rule
keeps the candidates with the best score; the first rule that leaves exactly one candidate
decides. The order is data (:class:`RoutingPolicy`), so a configuration can change it. No
candidate at all means "create a lead". Every decision comes with a :class:`MatchTrace`
(candidates plus the deciding rule) that is stored on the conversation session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from connector.domain.model import Configuration

RECENT_CONVERSATION = "recent_conversation"
SENDER_OWNER = "sender_owner"
TEAM_MEMBER = "team_member"
TABLE_PRIORITY = "table_priority"
ACTIVE = "active"
RECENTLY_MODIFIED = "recently_modified"
ONLY_CANDIDATE = "only_candidate"
TIE_BREAK = "tie_break"
NO_MATCH = "no_match"
MOVED = "moved"

DEFAULT_RULES: tuple[str, ...] = (
    RECENT_CONVERSATION,
    SENDER_OWNER,
    TEAM_MEMBER,
    TABLE_PRIORITY,
    ACTIVE,
    RECENTLY_MODIFIED,
)
DEFAULT_TABLE_PRIORITY: tuple[str, ...] = ("contact", "account", "opportunity", "lead")

Source = Literal["index", "live", "created", "moved", "none"]


@dataclass(frozen=True, slots=True, order=True)
class RecordRef:
    """A CRM row: table logical name (``contact``) and its id (a GUID string)."""

    table: str
    id: str

    def __str__(self) -> str:
        return f"{self.table}:{self.id}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A record that carries the number, with what the rules need to compare it.

    ``owner_id`` is the owning user or team id; ``owner_is_team`` says which. ``via`` is the
    record it was found through for related record types (an opportunity through its
    parent contact); ``matched_column`` the phone column that matched (``mobilephone``, or
    ``parentcontactid.mobilephone`` for a related record).
    """

    record: RecordRef
    name: str = ""
    owner_id: str | None = None
    owner_is_team: bool = False
    active: bool = True
    modified_on: datetime | None = None
    matched_column: str = ""
    via: RecordRef | None = None

    def summary(self) -> dict[str, Any]:
        """A compact JSON-ready view for the match trace."""
        out: dict[str, Any] = {
            "record": str(self.record),
            "name": self.name,
            "column": self.matched_column,
            "active": self.active,
        }
        if self.via is not None:
            out["via"] = str(self.via)
        return out


@dataclass(frozen=True, slots=True)
class SenderContext:
    """Who owns the sender number the message came to, and how that configuration ranks tables.

    ``team_member_ids`` are the users in ``team_id``; ``table_priority`` lists the
    configuration's record types in priority order (empty: the default order).
    ``default_country`` is the sender's ISO region, the last fallback for national numbers.
    """

    configuration_id: str
    owner_id: str | None = None
    team_id: str | None = None
    team_member_ids: frozenset[str] = frozenset()
    table_priority: tuple[str, ...] = ()
    default_country: str | None = None

    @classmethod
    def of(cls, config: Configuration) -> SenderContext:
        """What the resolver needs to know of the (stored) configuration a number texts."""
        if config.id is None:
            raise ValueError("a configuration not stored yet has no sender context")
        return cls(
            configuration_id=config.id,
            owner_id=config.owner_id,
            team_id=config.owning_team_id,
            default_country=config.default_country,
        )


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """The rule order and the default table priority (data, so it can be configured)."""

    rules: tuple[str, ...] = DEFAULT_RULES
    table_priority: tuple[str, ...] = DEFAULT_TABLE_PRIORITY

    def __post_init__(self) -> None:
        unknown = [rule for rule in self.rules if rule not in RULES]
        if unknown:
            raise ValueError(f"unknown routing rules: {', '.join(unknown)}")


@dataclass(frozen=True, slots=True)
class MatchTrace:
    """Why a message landed where it did: the candidates and the rule that decided."""

    phone: str
    decided_by: str
    chosen: RecordRef | None
    candidates: tuple[Candidate, ...] = ()
    source: Source = "index"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the session's match-trace column and the API."""
        return {
            "phone": self.phone,
            "decided_by": self.decided_by,
            "chosen": str(self.chosen) if self.chosen else None,
            "source": self.source,
            "candidates": [c.summary() for c in self.candidates],
        }

    def to_json(self, limit: int = 8000) -> str:
        """Compact JSON of :meth:`to_dict` within ``limit`` characters (the session column):
        candidates are dropped from the end, and counted, until it fits."""
        data = self.to_dict()
        total = len(data["candidates"])
        while True:
            text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
            if len(text) <= limit or not data["candidates"]:
                return text[:limit]
            data["candidates"] = data["candidates"][: len(data["candidates"]) // 2]
            data["omitted_candidates"] = total - len(data["candidates"])

    def to_text(self, limit: int = 2000) -> str:
        """One short line for people: ``contact:1 by sender_owner from 2 candidates (...)``."""
        chosen = str(self.chosen) if self.chosen else "new lead"
        names = ", ".join(f"{c.record}[{c.matched_column}]" for c in self.candidates)
        text = (
            f"{chosen} by {self.decided_by} from {len(self.candidates)} candidate(s) "
            f"via {self.source}" + (f": {names}" if names else "")
        )
        return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome: a record to link to, or ``create_lead`` when the number is unknown."""

    record: RecordRef | None
    trace: MatchTrace
    created: bool = False

    @property
    def create_lead(self) -> bool:
        """No record carries the number: a lead must be (or was) created for it."""
        return self.record is None or self.created


@dataclass(frozen=True, slots=True)
class RuleInputs:
    """What the rules look at besides the candidates themselves."""

    sender: SenderContext
    last_conversation: Mapping[RecordRef, datetime] = field(default_factory=dict)
    table_priority: tuple[str, ...] = DEFAULT_TABLE_PRIORITY


Score = tuple[float, ...]
Rule = Callable[[Candidate, RuleInputs], Score]


def _recent_conversation(c: Candidate, inputs: RuleInputs) -> Score:
    at = inputs.last_conversation.get(c.record)
    return (1.0, at.timestamp()) if at is not None else (0.0, 0.0)


def _sender_owner(c: Candidate, inputs: RuleInputs) -> Score:
    owner = inputs.sender.owner_id
    return (1.0 if owner is not None and c.owner_id == owner else 0.0,)


def _team_member(c: Candidate, inputs: RuleInputs) -> Score:
    s = inputs.sender
    # Owner ids are GUIDs, unique across users and teams: a record whose owner is the team
    # itself counts whether or not the owner-type annotation came with the row.
    by_team = s.team_id is not None and c.owner_id == s.team_id
    by_member = not c.owner_is_team and c.owner_id in s.team_member_ids
    return (1.0 if by_team or by_member else 0.0,)


def _table_priority(c: Candidate, inputs: RuleInputs) -> Score:
    order = inputs.table_priority
    rank = order.index(c.record.table) if c.record.table in order else len(order)
    return (-float(rank),)


def _active(c: Candidate, _inputs: RuleInputs) -> Score:
    return (1.0 if c.active else 0.0,)


def _recently_modified(c: Candidate, _inputs: RuleInputs) -> Score:
    return (c.modified_on.timestamp() if c.modified_on else float("-inf"),)


RULES: dict[str, Rule] = {
    RECENT_CONVERSATION: _recent_conversation,
    SENDER_OWNER: _sender_owner,
    TEAM_MEMBER: _team_member,
    TABLE_PRIORITY: _table_priority,
    ACTIVE: _active,
    RECENTLY_MODIFIED: _recently_modified,
}


def decide(
    phone: str,
    candidates: Sequence[Candidate],
    sender: SenderContext,
    *,
    last_conversation: Mapping[RecordRef, datetime] | None = None,
    policy: RoutingPolicy | None = None,
    source: Source = "index",
) -> Resolution:
    """Pick the record for ``phone`` among ``candidates`` by the policy's rules, with a trace.

    Duplicate candidates (the same record matched on two columns) count once. Ties left after
    every rule go to the smallest record reference, so the answer is deterministic.
    """
    policy = policy or RoutingPolicy()
    unique = tuple(_dedupe(candidates))
    if not unique:
        trace = MatchTrace(phone=phone, decided_by=NO_MATCH, chosen=None, source="none")
        return Resolution(record=None, trace=trace)
    inputs = RuleInputs(
        sender=sender,
        last_conversation=last_conversation or {},
        table_priority=sender.table_priority or policy.table_priority,
    )
    remaining, decided_by = list(unique), ONLY_CANDIDATE
    if len(remaining) > 1:
        decided_by = TIE_BREAK
        for name in policy.rules:
            remaining = _keep_best(remaining, RULES[name], inputs)
            if len(remaining) == 1:
                decided_by = name
                break
    chosen = min(remaining, key=lambda c: c.record)
    trace = MatchTrace(
        phone=phone, decided_by=decided_by, chosen=chosen.record, candidates=unique, source=source
    )
    return Resolution(record=chosen.record, trace=trace)


def _keep_best(candidates: list[Candidate], rule: Rule, inputs: RuleInputs) -> list[Candidate]:
    scored = [(rule(c, inputs), c) for c in candidates]
    best = max(score for score, _ in scored)
    return [c for score, c in scored if score == best]


def _dedupe(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One candidate per record; a direct match wins over one through a related record."""
    seen: dict[RecordRef, Candidate] = {}
    for c in candidates:
        kept = seen.get(c.record)
        if kept is None or (kept.via is not None and c.via is None):
            seen[c.record] = c
    return list(seen.values())


def created_lead(phone: str, lead: RecordRef) -> Resolution:
    """The resolution for an unknown number after its lead was created (or found created)."""
    trace = MatchTrace(phone=phone, decided_by=NO_MATCH, chosen=lead, source="created")
    return Resolution(record=lead, trace=trace, created=True)


def moved(phone: str, target: RecordRef, previous: RecordRef | None) -> MatchTrace:
    """The trace recorded when someone moves a conversation to another record."""
    before = () if previous is None else (Candidate(record=previous, matched_column="before"),)
    return MatchTrace(
        phone=phone, decided_by=MOVED, chosen=target, candidates=before, source="moved"
    )
