"""The session mirror a batch at a time, on a SQLite file and on a real PostgreSQL server.

A claimed batch's sessions are read in one query per configuration and stored in one
transaction; what that leaves must be what the one-by-one optimistic saves leave, and a pair
another worker moved meanwhile must fail alone (re-read by the caller) without losing the
others.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, event

from connector.domain.conversation import SessionState
from connector.state.db import StateStore
from connector.state.session_mirror import SessionCache

CONFIG = "cfg-1"
START = 1_700_000_000.0
Change = tuple[SessionState, SessionState | None]


@pytest.fixture
def cache(state_url: str) -> Iterator[SessionCache]:
    store = StateStore.from_url(state_url)
    yield SessionCache(store)
    store.close()


@pytest.fixture
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionCache]:
    """A mirror in a store of its own, saved one session at a time (the reference)."""
    store = StateStore.from_url(f"sqlite:///{tmp_path_factory.mktemp('ref') / 'state.db'}")
    yield SessionCache(store)
    store.close()


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """The SQL statements any engine sends meanwhile from this thread (an ``executemany``
    counts once). Other threads are left out: a checkpointer or a store left by an earlier
    test may run a statement meanwhile, and none of those is the save's."""
    seen: list[str] = []
    here = threading.get_ident()

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == here:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def phone(n: int) -> str:
    return f"+1415555{n:04d}"


def opened(n: int, at: float = START, tag: str = "a") -> SessionState:
    return SessionState(
        id=f"s-{n}-{tag}",
        configuration_id=CONFIG,
        phone=phone(n),
        started_at=at,
        expires_at=at + 3600,
        regarding_table="contact",
        regarding_id=f"c-{n}",
        unread=1,
        last_message_at=at,
        counted=frozenset({f"SM{n}{tag}"}),
    )


def stored_view(cache: SessionCache, n: int) -> tuple[str, int, int] | None:
    found = cache.current(CONFIG, phone(n))
    return None if found is None else (found.id, found.unread, found.version)


def rounds(read: dict[str, SessionState]) -> list[list[Change]]:
    """One batch's changes for 50 pairs: some continue their session, some open a new one
    after it (close and open: two changes), the rest are new pairs."""
    groups: list[list[Change]] = []
    for n in range(50):
        current = read.get(phone(n))
        if current is None:
            groups.append([(opened(n), None)])
        elif n % 5 == 0:
            closed = replace(current, closed_at=START + 100, unread=current.unread + 1)
            groups.append([(closed, current), (opened(n, START + 200, "b"), closed)])
        else:
            groups.append([(replace(current, unread=current.unread + 1), current)])
    return groups


def test_saving_fifty_conversations_at_once_leaves_what_fifty_saves_leave(
    cache: SessionCache, second: SessionCache
) -> None:
    first_round: list[list[Change]] = [[(opened(n), None)] for n in range(0, 50, 2)]  # half exist
    assert cache.save_groups(first_round) == [True] * len(first_round)
    for group in first_round:
        assert second.save_many(group)
    phones = [phone(n) for n in range(50)]
    groups = rounds(cache.current_many(CONFIG, phones))
    assert rounds(second.current_many(CONFIG, phones)) == groups
    with counted_statements() as statements:
        assert cache.save_groups(groups) == [True] * 50
    assert len(statements) <= 6  # one transaction of executemany writes, not 60 statements
    for group in groups:
        assert second.save_many(group)
    for n in range(50):
        assert stored_view(cache, n) == stored_view(second, n) is not None
    assert cache.get("s-0-a") == second.get("s-0-a")  # the closed one, counted and versioned
    assert cache.get("s-0-b") == second.get("s-0-b")
    assert cache.awaiting_escalation(CONFIG, START + 10_000, 100) == second.awaiting_escalation(
        CONFIG, START + 10_000, 100
    )


def test_a_pair_another_worker_moved_fails_alone_and_the_others_are_stored(
    cache: SessionCache,
) -> None:
    assert cache.save_groups([[(opened(n), None)] for n in range(3)]) == [True] * 3
    read = cache.current_many(CONFIG, [phone(n) for n in range(4)])
    assert sorted(read) == [phone(0), phone(1), phone(2)]  # no session yet: left out
    racer = read[phone(1)]
    assert cache.save(replace(racer, unread=9), racer)  # another worker, first
    groups: list[list[Change]] = [
        [(replace(s, unread=s.unread + 1), s)] for s in (read[phone(n)] for n in range(3))
    ]
    groups.append([(opened(3), None)])
    assert cache.save_groups(groups) == [True, False, True, True]
    assert [stored_view(cache, n) for n in range(4)] == [
        ("s-0-a", 2, 2),
        ("s-1-a", 9, 2),  # the racer's write stands; the caller re-reads and counts again
        ("s-2-a", 2, 2),
        ("s-3-a", 1, 1),
    ]


def test_a_new_session_for_a_pair_another_worker_opened_first_fails_alone(
    cache: SessionCache,
) -> None:
    assert cache.save(opened(1, tag="theirs"), None)
    groups = [[(opened(n), None)] for n in range(3)]
    assert cache.save_groups(groups) == [True, False, True]
    assert stored_view(cache, 1) == ("s-1-theirs", 1, 1)
    assert cache.get("s-1-a") is None  # nothing half-written for the loser
    assert stored_view(cache, 0) == ("s-0-a", 1, 1) and stored_view(cache, 2) == ("s-2-a", 1, 1)
