"""Shared fixtures for every tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.settings import ENV_PREFIX
from connector.testing.redis import RedisServer
from connector.testing.shared_emulator import SharedEmulator

# The port contracts assert in a helper module both tiers import: have pytest explain failures.
pytest.register_assert_rewrite("tests.port_contracts")


@pytest.fixture(autouse=True)
def _clean_connector_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's own CONNECTOR_* variables."""
    import os

    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    yield


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for this test session (started here, stopped at the end)."""
    from connector.testing.postgres import start_postgres

    server = start_postgres()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis server for this test session (started here, stopped at the end)."""
    from connector.testing.redis import start_redis

    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis server, emptied for this test (``redis://127.0.0.1:PORT/0``)."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A state-store URL, once for SQLite and once for a real PostgreSQL server.

    Each use gets an empty database: a fresh SQLite file, or a fresh PostgreSQL database.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}"
    import uuid

    from sqlalchemy import create_engine, text

    base: str = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[SharedEmulator]:
    """The session's Dataverse emulator, shared by the integration and e2e tiers; tests ask
    for ``emulator_url`` (fresh) or ``installed_emulator_url`` (schema installed) instead."""
    emulator = SharedEmulator()
    try:
        yield emulator
    finally:
        emulator.close()


@pytest.fixture
def emulator_url(shared_emulator: SharedEmulator) -> str:
    """A fresh emulator's base URL: standard tables and seed rows only."""
    shared_emulator.reset()
    return shared_emulator.url


@pytest.fixture
def installed_emulator_url(shared_emulator: SharedEmulator) -> str:
    """An emulator with the solution schema installed and no rows of ours."""
    shared_emulator.restore_installed()
    return shared_emulator.url
