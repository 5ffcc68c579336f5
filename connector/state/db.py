"""The state store's engine and schema registry (SQLAlchemy Core; SQLite or PostgreSQL).

Each state module (``journal``, ``caches``, ``phone_index``...) declares its tables on the
shared :data:`metadata`; :meth:`StateStore.create_all` makes whatever is missing: tables, and
in tables an earlier version made, the nullable columns and indexes declared since (dropping
the indexes a table retired). SQLite runs in WAL mode with ``synchronous=FULL`` so a row
committed before a webhook is answered survives a crash of the process or the machine;
PostgreSQL is used as is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Index, MetaData, Table, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from connector.errors import StateStoreError

metadata = MetaData()

SCHEMA_LOCK_KEY = 0x736D73635F646C  # PostgreSQL advisory lock taken while tables are made


def partial_index(name: str, *columns: str, where: str) -> Index:
    """An index of the rows ``where`` holds for (SQL, the same on SQLite and PostgreSQL). A
    query uses it when its own condition says as much: ``where`` itself, or for ``x IS NOT
    NULL`` a comparison such as ``x = ?``."""
    return Index(name, *columns, sqlite_where=text(where), postgresql_where=text(where))


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings the state store needs.

    ``sqlite://`` (no path) is a private in-memory database shared by every connection of the
    engine (tests); ``sqlite:///file.db`` a file; ``postgresql://`` uses psycopg 3.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False},
            poolclass=StaticPool if in_memory else None,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)


class StateStore:
    """One database holding the connector's local state."""

    def __init__(self, engine: Engine, tables: Sequence[Table] | None = None) -> None:
        self.engine = engine
        self.tables = tuple(tables) if tables is not None else None
        """The tables this store holds (None: every table declared on :data:`metadata`)."""
        self._checked: set[str] = set()  # tables already brought up to their declaration

    @classmethod
    def from_url(cls, url: str, tables: Sequence[Table] | None = None) -> StateStore:
        """Open (and create if needed) the store at ``url`` (only ``tables``, when given)."""
        store = cls(make_engine(url), tables)
        store.create_all()
        return store

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def create_all(self) -> None:
        """Create every table of the store (see :attr:`tables`) that does not exist yet.

        Processes of a fleet starting together on an empty PostgreSQL database would race to
        create the same tables (one fails with ``already exists``): there, the work is done
        under an advisory lock, one process at a time.
        """
        tables = self.tables if self.tables is not None else metadata.sorted_tables
        try:
            with self._schema_lock():
                existing = set(inspect(self.engine).get_table_names())
                metadata.create_all(self.engine, tables=list(tables))
                for table in tables:
                    if table.name not in self._checked and table.name in existing:
                        self._add_missing(table)
                    self._checked.add(table.name)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot create the state store tables: {exc}") from exc

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Hold PostgreSQL's schema advisory lock (a no-op on SQLite)."""
        if self.dialect != "postgresql":
            yield
            return
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
                conn.commit()

    def _add_missing(self, table: Table) -> None:
        """Nullable columns and indexes declared since ``table`` was made (another process
        adding them at the same moment is fine: what exists afterwards is what counts), and
        without the indexes its ``info["retired_indexes"]`` names."""
        present = self._names(table)
        for column in table.columns:
            if column.nullable and column.name not in present:
                kind = column.type.compile(dialect=self.engine.dialect)
                sql = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
                self._apply(lambda conn, sql=sql: conn.execute(text(sql)), table, column.name)
        for index in table.indexes:
            if index.name and index.name not in present:
                self._apply(lambda conn, ix=index: ix.create(conn), table, index.name)
        for name in table.info.get("retired_indexes", ()):
            if name in present:  # an index an earlier version made, that misleads the planner
                with self.engine.begin() as conn:
                    conn.execute(text(f"DROP INDEX IF EXISTS {name}"))

    def _names(self, table: Table) -> set[str]:
        """The table's column and index names as the database has them."""
        found = inspect(self.engine)
        names = {str(row["name"]) for row in found.get_columns(table.name)}
        return names | {str(row["name"]) for row in found.get_indexes(table.name)}

    def _apply(self, change: Any, table: Table, name: str) -> None:
        try:
            with self.engine.begin() as conn:
                change(conn)
        except SQLAlchemyError:
            if name not in self._names(table):  # not another process's doing: the failure stands
                raise

    def ping(self) -> None:
        """Raise :class:`StateStoreError` unless the database answers (readiness check)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"state store unreachable: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()
