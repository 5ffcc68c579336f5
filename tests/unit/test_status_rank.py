"""The message-status vocabulary: statuses never go backwards, whatever order callbacks
arrive in, and every provider word maps to one of ours."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.domain.status import (
    FailureCategory,
    FailureInfo,
    MessageStatus,
    advance,
    parse_status,
    rank,
    supersedes,
)

S = MessageStatus


@pytest.mark.parametrize(
    ("earlier", "later"),
    [(S.ACCEPTED, S.QUEUED), (S.QUEUED, S.SENDING), (S.SENDING, S.SENT), (S.SENT, S.DELIVERED),
     (S.SENT, S.UNDELIVERED), (S.SENT, S.FAILED), (S.DELIVERED, S.READ), (S.QUEUED, S.FAILED)],
)  # fmt: skip
def test_later_status_supersedes_earlier_and_never_the_reverse(
    earlier: MessageStatus, later: MessageStatus
) -> None:
    assert rank(earlier) < rank(later)
    assert advance(earlier, later) is later
    assert advance(later, earlier) is later


def test_late_sent_after_delivered_is_ignored() -> None:
    assert not supersedes(S.DELIVERED, S.SENT)
    assert advance(S.DELIVERED, S.SENT) is S.DELIVERED


def test_first_final_status_stays() -> None:
    assert advance(S.DELIVERED, S.FAILED) is S.DELIVERED
    assert advance(S.UNDELIVERED, S.DELIVERED) is S.UNDELIVERED


def test_read_never_follows_a_failure_or_cancel() -> None:
    for final in (S.FAILED, S.UNDELIVERED, S.CANCELED):
        assert advance(final, S.READ) is final


def test_duplicate_status_is_not_news() -> None:
    for status in S:
        assert not supersedes(status, status)


def test_first_status_is_always_taken() -> None:
    assert advance(None, S.SENT) is S.SENT


@pytest.mark.parametrize(
    "arrivals",
    list(itertools.permutations([S.QUEUED, S.SENDING, S.SENT, S.DELIVERED])),
)
def test_any_arrival_order_ends_delivered(arrivals: tuple[MessageStatus, ...]) -> None:
    current = None
    for status in arrivals:
        current = advance(current, status)
    assert current is S.DELIVERED


@pytest.mark.parametrize(
    ("word", "status"),
    [("queued", S.QUEUED), ("Delivered", S.DELIVERED), (" sent ", S.SENT),
     ("partially_delivered", S.SENT), ("receiving", S.RECEIVED), ("canceled", S.CANCELED),
     ("accepted", S.ACCEPTED), ("scheduled", S.SCHEDULED), ("read", S.READ)],
)  # fmt: skip
def test_provider_words_map_to_our_status(word: str, status: MessageStatus) -> None:
    assert parse_status(word) is status


@pytest.mark.parametrize("word", ["", "deliverd", "ok", "DROP TABLE"])
def test_unknown_status_word_is_rejected(word: str) -> None:
    with pytest.raises(ValueError, match="unknown message status"):
        parse_status(word)


def test_retry_class_of_a_failure() -> None:
    opted = FailureInfo(FailureCategory.OPTED_OUT, False, "r", "a")
    transient = FailureInfo(FailureCategory.UNREACHABLE, True, "r", "a")
    permanent = FailureInfo(FailureCategory.INVALID_RECIPIENT, False, "r", "a")
    assert (opted.retry_class, transient.retry_class, permanent.retry_class) == (
        "opted_out", "transient", "permanent")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(MessageStatus)), min_size=1, max_size=12))
def test_kept_status_never_moves_backwards(arrivals: list[MessageStatus]) -> None:
    current: MessageStatus | None = None
    for status in arrivals:
        kept = advance(current, status)
        if current is not None:
            assert rank(kept) >= rank(current)
            if current in (S.FAILED, S.UNDELIVERED, S.CANCELED):
                assert kept is current
        current = kept
