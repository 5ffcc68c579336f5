"""The record-resolution priority rules, each in isolation and in combination (a test table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from connector.domain.routing import (
    ACTIVE,
    NO_MATCH,
    ONLY_CANDIDATE,
    RECENT_CONVERSATION,
    RECENTLY_MODIFIED,
    SENDER_OWNER,
    TABLE_PRIORITY,
    TEAM_MEMBER,
    TIE_BREAK,
    Candidate,
    RecordRef,
    RoutingPolicy,
    SenderContext,
    created_lead,
    decide,
    moved,
)

PHONE = "+14155550101"
OLD = datetime(2024, 1, 1, tzinfo=UTC)
NEW = datetime(2025, 6, 1, tzinfo=UTC)
SENDER = SenderContext(
    configuration_id="cfg",
    owner_id="u-owner",
    team_id="t-sales",
    team_member_ids=frozenset({"u-mate"}),
)


def rec(table: str, rid: str) -> RecordRef:
    return RecordRef(table, rid)


def cand(table: str, rid: str, **kw: object) -> Candidate:
    defaults: dict[str, object] = {"owner_id": "u-other", "modified_on": OLD, "active": True}
    defaults.update(kw)
    return Candidate(record=rec(table, rid), matched_column="mobilephone", **defaults)  # type: ignore[arg-type]


@dataclass
class Case:
    candidates: list[Candidate]
    chosen: RecordRef | None
    rule: str
    conversations: dict[RecordRef, datetime] = field(default_factory=dict)
    sender: SenderContext = SENDER


CASES = {
    # each rule in isolation
    "recent_conversation_alone": Case(
        [cand("contact", "a"), cand("contact", "b")],
        rec("contact", "b"),
        RECENT_CONVERSATION,
        {rec("contact", "a"): OLD, rec("contact", "b"): NEW},
    ),
    "sender_owner_alone": Case(
        [cand("contact", "a"), cand("contact", "b", owner_id="u-owner")],
        rec("contact", "b"),
        SENDER_OWNER,
    ),
    "team_member_owner": Case(
        [cand("contact", "a"), cand("contact", "b", owner_id="u-mate")],
        rec("contact", "b"),
        TEAM_MEMBER,
    ),
    "team_owned_record_without_owner_type_annotation": Case(
        [cand("contact", "a"), cand("contact", "b", owner_id="t-sales")],
        rec("contact", "b"),
        TEAM_MEMBER,
    ),
    "team_owned_record": Case(
        [cand("contact", "a"), cand("contact", "b", owner_id="t-sales", owner_is_team=True)],
        rec("contact", "b"),
        TEAM_MEMBER,
    ),
    "table_priority_contact_over_lead": Case(
        [cand("lead", "l"), cand("contact", "c")], rec("contact", "c"), TABLE_PRIORITY
    ),
    "table_priority_account_over_opportunity": Case(
        [cand("opportunity", "o"), cand("account", "a")], rec("account", "a"), TABLE_PRIORITY
    ),
    "inactive_contact_loses_to_active": Case(
        [cand("contact", "a", active=False), cand("contact", "b")],
        rec("contact", "b"),
        ACTIVE,
    ),
    "two_contacts_sharing_a_number_most_recent_modified": Case(
        [cand("contact", "a", modified_on=NEW), cand("contact", "b", modified_on=OLD)],
        rec("contact", "a"),
        RECENTLY_MODIFIED,
    ),
    # combinations
    "recent_conversation_overrides_type_order": Case(
        [cand("contact", "c"), cand("lead", "l")],
        rec("lead", "l"),
        RECENT_CONVERSATION,
        {rec("lead", "l"): NEW},
    ),
    "recent_conversation_overrides_owner": Case(
        [cand("contact", "c", owner_id="u-owner"), cand("contact", "d")],
        rec("contact", "d"),
        RECENT_CONVERSATION,
        {rec("contact", "d"): OLD},
    ),
    "owner_beats_type_order": Case(
        [cand("contact", "c"), cand("lead", "l", owner_id="u-owner")],
        rec("lead", "l"),
        SENDER_OWNER,
    ),
    "owner_beats_team": Case(
        [cand("contact", "c", owner_id="u-mate"), cand("contact", "d", owner_id="u-owner")],
        rec("contact", "d"),
        SENDER_OWNER,
    ),
    "team_beats_type_order": Case(
        [cand("contact", "c"), cand("lead", "l", owner_id="u-mate")],
        rec("lead", "l"),
        TEAM_MEMBER,
    ),
    "type_order_beats_active": Case(
        [cand("contact", "c", active=False), cand("lead", "l")], rec("contact", "c"), TABLE_PRIORITY
    ),
    "active_beats_modified": Case(
        [cand("contact", "a", active=False, modified_on=NEW), cand("contact", "b")],
        rec("contact", "b"),
        ACTIVE,
    ),
    "contact_and_lead_both_owned_by_sender": Case(
        [cand("lead", "l", owner_id="u-owner"), cand("contact", "c", owner_id="u-owner")],
        rec("contact", "c"),
        TABLE_PRIORITY,
    ),
    "configuration_priority_puts_lead_first": Case(
        [cand("contact", "c"), cand("lead", "l")],
        rec("lead", "l"),
        TABLE_PRIORITY,
        sender=SenderContext("cfg", table_priority=("lead", "contact")),
    ),
    "unknown_table_ranks_last": Case(
        [cand("custom_pet", "p"), cand("lead", "l")], rec("lead", "l"), TABLE_PRIORITY
    ),
    "single_candidate": Case([cand("lead", "l", active=False)], rec("lead", "l"), ONLY_CANDIDATE),
    "full_tie_is_deterministic": Case(
        [cand("contact", "b"), cand("contact", "a")], rec("contact", "a"), TIE_BREAK
    ),
    "no_candidates_means_create_a_lead": Case([], None, NO_MATCH),
    "sender_without_owner_never_matches_unowned": Case(
        [cand("contact", "a", owner_id=None), cand("contact", "b", modified_on=NEW)],
        rec("contact", "b"),
        RECENTLY_MODIFIED,
        sender=SenderContext("cfg"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_priority_rule_table(case: Case) -> None:
    result = decide(PHONE, case.candidates, case.sender, last_conversation=case.conversations)
    assert result.record == case.chosen
    assert result.trace.decided_by == case.rule
    assert result.trace.chosen == case.chosen


def test_the_answer_does_not_depend_on_candidate_order() -> None:
    cands = [cand("lead", "l"), cand("contact", "c", active=False), cand("account", "a")]
    answers = {decide(PHONE, order, SENDER).record for order in (cands, cands[::-1])}
    assert answers == {rec("contact", "c")}


def test_same_record_matched_on_two_columns_counts_once() -> None:
    a = cand("contact", "a")
    b = Candidate(record=rec("contact", "a"), matched_column="telephone1")
    result = decide(PHONE, [a, b], SENDER)
    assert result.trace.decided_by == ONLY_CANDIDATE
    assert len(result.trace.candidates) == 1


def test_direct_match_is_kept_over_one_through_a_related_record() -> None:
    via = Candidate(record=rec("contact", "a"), via=rec("account", "x"), matched_column="p.x")
    direct = cand("contact", "a")
    result = decide(PHONE, [via, direct], SENDER)
    assert result.trace.candidates[0].via is None


def test_trace_lists_candidates_and_deciding_rule() -> None:
    result = decide(PHONE, [cand("lead", "l"), cand("contact", "c")], SENDER, source="live")
    data = result.trace.to_dict()
    assert data["decided_by"] == TABLE_PRIORITY
    assert data["chosen"] == "contact:c"
    assert data["source"] == "live"
    assert {c["record"] for c in data["candidates"]} == {"lead:l", "contact:c"}
    assert result.trace.to_text().startswith("contact:c by table_priority from 2 candidate(s)")


def test_trace_text_is_bounded() -> None:
    many = [cand("contact", f"{i:036d}") for i in range(500)]
    assert len(decide(PHONE, many, SENDER).trace.to_text(limit=300)) == 300


def test_policy_order_is_data() -> None:
    policy = RoutingPolicy(rules=(ACTIVE, TABLE_PRIORITY))
    cands = [cand("contact", "c", active=False), cand("lead", "l")]
    result = decide(PHONE, cands, SENDER, policy=policy)
    assert (result.record, result.trace.decided_by) == (rec("lead", "l"), ACTIVE)


def test_policy_rejects_unknown_rule_names() -> None:
    with pytest.raises(ValueError, match="unknown routing rules: favourite"):
        RoutingPolicy(rules=("favourite",))


def test_created_lead_and_moved_traces() -> None:
    lead = rec("lead", "new")
    created = created_lead(PHONE, lead)
    assert created.create_lead and created.record == lead and created.trace.source == "created"
    trace = moved(PHONE, rec("account", "a"), rec("contact", "c"))
    assert trace.decided_by == "moved"
    assert trace.to_dict()["candidates"][0]["record"] == "contact:c"


def test_trace_json_fits_the_session_column_and_counts_what_it_dropped() -> None:
    import json

    many = [cand("contact", f"{i:036d}") for i in range(500)]
    trace = decide(PHONE, many, SENDER).trace
    text = trace.to_json(limit=8000)
    data = json.loads(text)
    assert len(text) <= 8000
    assert data["decided_by"] == TIE_BREAK
    assert data["omitted_candidates"] + len(data["candidates"]) == 500
    small = json.loads(decide(PHONE, many[:2], SENDER).trace.to_json())
    assert "omitted_candidates" not in small and len(small["candidates"]) == 2
