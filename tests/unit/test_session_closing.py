"""Closing conversations: the domain rule (a closed session takes no more messages), the
timeout sweep over the real session mirror (SQLite) and a fake writer, and the agent's close."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import select, update

from connector.domain.conversation import SessionState
from connector.services.session_closing import SessionClosing
from connector.services.sessions import SessionActions
from connector.state.caches import ConfigurationCache
from connector.state.db import StateStore
from connector.state.session_mirror import SessionCache
from connector.state.session_tables import sessions_table
from connector.testing.conversations import FakeConfigurationDirectory, FakeConversationWriter

START = 1_000_000.0
HOUR = 3600.0


@dataclass
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now


def _session(n: int, *, expires_in: float = HOUR, unread: int = 0) -> SessionState:
    return SessionState(
        id=f"00000000-0000-0000-0000-{n:012d}",
        configuration_id="cfg-1",
        phone=f"+1415555{n:04d}",
        started_at=START,
        expires_at=START + expires_in,
        unread=unread,
    )


@dataclass
class World:
    clock: Clock = field(default_factory=Clock)
    sessions: SessionCache = field(
        default_factory=lambda: SessionCache(StateStore.from_url("sqlite://"))
    )
    writer: FakeConversationWriter = field(default_factory=FakeConversationWriter)

    def sweep(self) -> SessionClosing:
        return SessionClosing(self.sessions, self.writer, clock=self.clock, page_size=2)

    def add(self, session: SessionState) -> None:
        assert self.sessions.save(session, None)


def test_a_closed_session_takes_no_message_after_its_close() -> None:
    session = _session(1).closed(START + 60)
    assert session.is_open(START + 30)
    assert not session.is_open(START + 60)
    assert session.closed(START + 90).closed_at == START + 60  # the first close stands
    assert session.close_due_at is None and _session(2).close_due_at == START + HOUR


def test_the_sweep_closes_only_timed_out_sessions_once_in_pages() -> None:
    world = World()
    for n in range(1, 6):
        world.add(_session(n, expires_in=HOUR if n < 5 else 3 * HOUR))
    world.clock.now = START + 2 * HOUR
    report = world.sweep().sweep()
    assert (report.closed, report.failed) == (4, 0)
    assert sorted(world.writer.sessions) == [_session(n).id for n in range(1, 5)]
    assert all(s.closed_at == START + HOUR for s in world.writer.sessions.values())
    for n in range(1, 5):
        stored = world.sessions.get(_session(n).id)
        assert stored is not None and stored.closed_at == START + HOUR
    assert world.sweep().sweep().closed == 0  # nothing due any more: nothing written
    assert world.writer.change_sets == 4


def test_a_failed_write_leaves_the_session_due_for_the_next_sweep() -> None:
    world = World()
    world.add(_session(1))
    world.clock.now = START + 2 * HOUR
    world.writer.fail_next = 1
    assert world.sweep().sweep().failed == 1
    stored = world.sessions.get(_session(1).id)
    assert stored is not None and stored.closed_at is None
    assert world.sweep().sweep().closed == 1


def test_the_agent_closes_and_accepting_resets_the_unread_count() -> None:
    world = World()
    world.add(_session(1, unread=3))
    configs = ConfigurationCache(FakeConfigurationDirectory())
    actions = SessionActions(world.sessions, world.writer, configs, clock=world.clock)
    accepted = actions.accept(_session(1).id, "user-1")
    assert accepted.unread == 0 and world.writer.sessions[accepted.id].unread == 0
    world.clock.now = START + 60
    closed = actions.close(_session(1).id, "user-1")
    assert closed.closed_at == START + 60
    assert world.writer.sessions[closed.id].closed_at == START + 60
    assert world.sweep().sweep().closed == 0  # closed by the agent: not due


def test_sessions_saved_before_the_sweep_existed_get_their_timeout() -> None:
    store = StateStore.from_url("sqlite://")
    cache = SessionCache(store)
    old, current = _session(1), _session(2, expires_in=2 * HOUR)
    assert cache.save(old, None) and cache.save(current, None)
    with store.engine.begin() as conn:  # as an older release stored the first one
        data = json.loads(conn.execute(select(sessions_table.c.data).limit(1)).scalar_one())
        data.pop("closed_at")
        conn.execute(
            update(sessions_table)
            .where(sessions_table.c.session_id == old.id)
            .values(data=json.dumps(data), close_due_at=None)
        )
    assert [s.id for s in cache.due_for_closing(START + 3 * HOUR, 10)] == [current.id]
    again = SessionCache(store)  # the next start fills it in, once
    due = again.due_for_closing(START + 3 * HOUR, 10)
    assert [s.id for s in due] == [old.id, current.id]
    assert due[0].closed_at is None and due[0].expires_at == old.expires_at
