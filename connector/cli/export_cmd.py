"""``connector export messages [--out FILE] [--since ...] [--session ID]``: messages as CSV.

Reads the message activities from Dataverse (in local mode: the emulator of the running
``connector serve`` in this directory) and writes the product's CSV columns to ``--out`` or
standard output, spreadsheet-formula text defused.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from connector.bootstrap import build
from connector.cli.common import settings_or_exit
from connector.crm.message_export import DataverseMessageArchive
from connector.errors import ConnectorError
from connector.services.export import write_csv

app = typer.Typer(help="Export data from Dataverse.", no_args_is_help=True)
err = Console(stderr=True)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        err.print(f"[bold red]--since[/]: not an ISO date or date-time: {value!r}")
        raise typer.Exit(2) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("messages")
def messages(
    out: Path | None = typer.Option(None, "--out", help="CSV file (default: stdout)."),  # noqa: B008 - typer declares options in defaults
    since: str | None = typer.Option(None, help="Only messages created at or after (ISO 8601)."),
    session: str | None = typer.Option(None, help="Only the messages of this session id."),
) -> None:
    """Write messages as CSV (Message ID, Thread ID, Created, Time, Full Name, From, To...)."""
    settings = settings_or_exit()  # logs go to stderr, the CSV to stdout
    connector = build(settings)
    try:
        archive = DataverseMessageArchive(connector.dataverse)
        rows = archive.messages(since=_since(since), session_id=session)
        if out is None:
            count = write_csv(rows, sys.stdout)
        else:
            with out.open("w", encoding="utf-8-sig", newline="") as handle:
                count = write_csv(rows, handle)
    except ConnectorError as exc:
        err.print(f"[bold red]Export failed[/]: {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        connector.close()
    err.print(f"{count} message(s) exported" + (f" to {out}" if out else ""), highlight=False)
