"""Core statements compiled once for the driver and run on its own cursor.

SQLAlchemy's per-execution work (parameter processing, the execution context, the result
object) cost more CPU than SQLite's insert itself on the webhook path, where one statement
runs per webhook with rows of plain strings and numbers. :class:`DriverStatement` compiles
a Core statement once for an engine's dialect and runs it on the driver's cursor, in the
connection's current transaction, raising the driver's errors as SQLAlchemy's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable


class DriverStatement:
    """A Core statement compiled once for the engine's driver: its SQL text, and the
    driver's parameters for a row (a tuple in the SQL's order for positional paramstyles such
    as SQLite's ``?``, else the mapping itself). Executed on the driver's own cursor
    (:meth:`execute`), it skips SQLAlchemy's per-execution work (parameter processing, the
    execution context, the result object), which cost more CPU than SQLite's insert itself
    on the webhook path. Only for statements whose columns need no type conversion (strings,
    numbers)."""

    def __init__(
        self, statement: Executable, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> None:
        compiled = statement.compile(  # type: ignore[attr-defined]  # every Core statement
            dialect=dialect, column_keys=list(column_keys) if column_keys else None
        )
        self.sql: str = compiled.string
        positional = dialect.paramstyle in ("qmark", "numeric", "format")
        self._order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if positional else None
        )

    def params(self, row: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        """The driver's parameters for ``row`` (keyed by the statement's bind names)."""
        if self._order is None:
            return row
        return tuple(row[name] for name in self._order)

    def execute(self, conn: Connection, row: Mapping[str, Any]) -> Any:
        """Run on ``conn``'s driver connection, in its current transaction; the first row
        the statement returned (None if none). The driver's errors are raised as
        SQLAlchemy's (``OperationalError`` for a locked database...), as ``conn.execute``
        would raise them, so callers (the group commit's lock retry) see one kind."""
        dbapi = conn.dialect.loaded_dbapi
        params = self.params(row)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, params)
            return cursor.fetchone() if cursor.description else None
        except dbapi.Error as exc:
            raise DBAPIError.instance(self.sql, params, exc, dbapi.Error) from exc
        finally:
            cursor.close()
