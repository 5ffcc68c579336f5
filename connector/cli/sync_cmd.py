"""``connector sync phones [--full]``: bring the phone index up to date by hand.

Runs the same sync the periodic job runs (incremental by default; ``--full`` re-reads every
record and drops deleted ones), with a rich progress bar per table and a summary table.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from connector.bootstrap import build
from connector.cli.common import settings_or_exit
from connector.errors import ConnectorError
from connector.services.phone_sync import SyncReport

app = typer.Typer(help="Synchronise local data from Dataverse.", no_args_is_help=True)


@app.command("phones")
def phones(
    full: bool = typer.Option(
        False, "--full", help="Re-read every record (and drop deleted ones), not only changes."
    ),
) -> None:
    """Update the phone index from the configured record types."""
    settings = settings_or_exit()
    console = Console()
    if settings.local_mode:
        console.print(
            "[bold red]The phone sync needs Dataverse[/] (set CONNECTOR_DATAVERSE__URL).",
            highlight=False,
        )
        raise typer.Exit(2)
    connector = build(settings)
    try:
        job = connector.phone_sync
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.completed:,} records"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(table: str, rows: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=None)
                bar.update(tasks[table], completed=rows)

            report = job.run(full=full, progress=progress)
    except ConnectorError as exc:
        console.print(f"[bold red]Phone sync failed[/]: {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        connector.close()
    console.print(summary(report))


def summary(report: SyncReport) -> Table:
    """The per-table outcome of a sync."""
    table = Table(title="phone sync")
    for column in ("table", "mode", "records", "numbers indexed", "deleted", "skipped"):
        table.add_column(column)
    for t in report.tables:
        table.add_row(
            t.table, t.mode, f"{t.rows:,}", f"{t.entries:,}", f"{t.deleted:,}", f"{t.skipped:,}"
        )
    return table
