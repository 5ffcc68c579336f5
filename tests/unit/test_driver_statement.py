"""Statements compiled once for the driver: the SQL text in the driver's paramstyle and the
row's values in the order that SQL needs."""

from __future__ import annotations

from sqlalchemy import bindparam, create_engine, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connector.state.driver_statement import DriverStatement
from connector.state.journal_table import journal_table

ROW = {"provider": "twilio", "event_id": "SM1", "received_at": 1.5, "payload": "{}"}
ROW |= {"status": "pending", "attempts": 0, "next_attempt_at": 1.5, "request_id": None}


def test_sqlite_gets_question_marks_and_a_tuple_in_the_sql_order() -> None:
    insert = sqlite_insert(journal_table).on_conflict_do_nothing().returning(journal_table.c.id)
    statement = DriverStatement(insert, sqlite.dialect(), list(reversed(ROW)))
    assert "?" in statement.sql and ":" not in statement.sql
    assert "RETURNING" in statement.sql
    columns = statement.sql.split("(", 2)[1].split(")")[0].replace(" ", "").split(",")
    assert statement.params(ROW) == tuple(ROW[name] for name in columns)


def test_postgresql_gets_named_parameters_and_the_row_itself() -> None:
    c = journal_table.c
    find = select(c.id).where(
        c.provider == bindparam("provider"), c.event_id == bindparam("event_id")
    )
    statement = DriverStatement(find, create_engine("postgresql+psycopg://u@db.invalid/x").dialect)
    assert "%(provider)s" in statement.sql and "%(event_id)s" in statement.sql
    assert statement.params(ROW) is ROW
