"""The session mirror's escalation index on SQLite and PostgreSQL: what the sweep reads, how
an older store gains the column, and racing sweeps on one shared store."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event, text

from connector.domain.conversation import SessionState
from connector.domain.model import Configuration, Provider
from connector.services.escalation import EscalationService
from connector.state.caches import ConfigurationCache
from connector.state.db import StateStore
from connector.state.session_mirror import SessionCache
from connector.testing.conversations import FakeConfigurationDirectory, FakeConversationWriter

NOW = 1_000_000.0
CONFIG = Configuration(
    "Main",
    Provider.SIMULATOR,
    "+14155550100",
    id="cfg-1",
    owning_team_id="team-1",
    idle_timeout_minutes=5,
)


def _waiting(n: int, since: float, configuration: str = "cfg-1") -> SessionState:
    return SessionState(
        id=f"00000000-0000-0000-0000-{n:012d}",
        configuration_id=configuration,
        phone=f"+1415555{n:04d}",
        started_at=since,
        expires_at=since + 86_400,
        awaiting_since=since,
        unread=1,
    )


def _stored(cache: SessionCache, session: SessionState) -> SessionState:
    assert cache.save(session, None)
    found = cache.get(session.id)
    assert found is not None
    return found


def test_sweep_reads_only_unsettled_waits_of_the_configuration_oldest_first(
    state_url: str,
) -> None:
    store = StateStore.from_url(state_url)
    cache = SessionCache(store)
    old, newer, fresh = (
        _stored(cache, _waiting(n, NOW - age)) for n, age in enumerate((900, 600, 60))
    )
    _stored(cache, _waiting(9, NOW - 900, configuration="cfg-2"))
    alerted = _stored(cache, _waiting(5, NOW - 1200))
    assert cache.save(alerted.escalated(NOW), alerted)
    acted = _stored(cache, _waiting(6, NOW - 1200))
    assert cache.save(acted.acted(NOW), acted)
    cutoff = NOW - 300
    assert [s.id for s in cache.awaiting_escalation("cfg-1", cutoff, 10)] == [old.id, newer.id]
    assert [s.id for s in cache.awaiting_escalation("cfg-1", cutoff, 1)] == [old.id]
    claimed = old.escalated(NOW, claim="t")
    assert cache.save(claimed, old)  # a claim stays readable until confirmed (lease)
    assert len(cache.awaiting_escalation("cfg-1", cutoff, 10)) == 2
    assert fresh.id in {s.id for s in cache.awaiting_escalation("cfg-1", NOW, 10)}
    store.close()


def test_the_sweep_query_is_an_index_range(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    cache = SessionCache(store)
    for n in range(50):
        _stored(cache, _waiting(n, NOW - n))
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        seen.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", capture)
    cache.awaiting_escalation("cfg-1", NOW - 10, 5)
    event.remove(store.engine, "before_cursor_execute", capture)
    statement, params = seen[-1]
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))  # tiny table: ask whether it can
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
        cursor.execute(explain + statement, params)
        plan = " ".join(str(row) for row in cursor.fetchall())
        cursor.close()
    store.close()
    assert "ix_session_cache_escalation" in plan


def test_a_store_made_before_the_escalation_column_gains_it(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS session_cache"))
        conn.execute(
            text(
                "CREATE TABLE session_cache (session_id VARCHAR(36) PRIMARY KEY,"
                " configuration_id VARCHAR(36) NOT NULL, phone VARCHAR(32) NOT NULL,"
                " version INTEGER NOT NULL, data TEXT NOT NULL)"
            )
        )
    store.close()
    reopened = StateStore.from_url(state_url)
    cache = SessionCache(reopened)
    waiting = _stored(cache, _waiting(1, NOW - 600))
    assert [s.id for s in cache.awaiting_escalation("cfg-1", NOW - 300, 10)] == [waiting.id]
    another = StateStore.from_url(state_url)  # a second process: nothing left to add
    another.close()
    reopened.close()


def test_sweeps_racing_on_one_store_alert_each_wait_once(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    cache = SessionCache(store)
    sessions = [_stored(cache, _waiting(n, NOW - 600)) for n in range(20)]
    writer = FakeConversationWriter()
    directory = FakeConfigurationDirectory(configurations=[CONFIG])
    sweepers = [
        EscalationService(
            ConfigurationCache(directory),
            SessionCache(store),
            writer,
            lambda _t: frozenset({"u-1", "u-2"}),
            clock=lambda: NOW,
        )
        for _ in range(4)
    ]
    all_read = threading.Barrier(len(sweepers))
    escalated: list[int] = []

    def sweep(sweeper: EscalationService) -> None:
        found = sweeper.candidates(CONFIG)
        all_read.wait(timeout=10)
        escalated.append(sweeper.escalate(CONFIG, found).escalated)

    threads = [threading.Thread(target=sweep, args=(s,)) for s in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(escalated) == len(sessions)
    assert writer.change_sets == len(sessions)  # one alert per session, whoever claimed it
    assert len(writer.notifications) == 2 * len(sessions)
    assert cache.awaiting_escalation("cfg-1", NOW, 100) == []
    store.close()
