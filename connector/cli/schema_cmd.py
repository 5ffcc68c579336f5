"""``connector schema plan|apply``: install or update the solution schema in Dataverse.

``plan`` reads the environment and prints what ``apply`` would create or change (a table),
plus the differences it keeps as they are; it writes nothing. ``apply`` carries the plan out
with progress bars and prints a summary; run it again after a failure to finish the job.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connector.bootstrap import Connector, build
from connector.cli.common import settings_or_exit
from connector.errors import ConnectorError
from connector.schema.installer import Installer
from connector.schema.plan import Plan
from connector.schema.spec import load_schema

app = typer.Typer(help="Install or update the solution schema.", no_args_is_help=True)
SCHEMA_DIR = typer.Option(
    None,
    "--schema-dir",
    help="Directory with solution.yaml and tables/ (default: the shipped one).",
)


def _installer(
    connector: Connector, schema_dir: Path | None, key_timeout: float = 600.0
) -> Installer:
    console = Console(stderr=True)
    if connector.settings.local_mode:
        console.print(
            "[bold red]No Dataverse URL[/]: set CONNECTOR_DATAVERSE__URL (local mode applies "
            "the schema to its embedded emulator by itself)."
        )
        raise typer.Exit(2)
    return Installer(connector.dataverse, load_schema(schema_dir), key_timeout=key_timeout)


def plan_table(plan: Plan) -> Table:
    """The plan as a readable table."""
    table = Table(title="schema plan")
    for column in ("#", "action", "component", "name", "table", "detail"):
        table.add_column(column)
    for index, step in enumerate(plan.steps, start=1):
        table.add_row(str(index), step.action, step.kind, step.name, step.table or "", step.detail)
    return table


def _show(console: Console, plan: Plan) -> None:
    if plan.empty:
        console.print("Nothing to do: the environment matches the schema.")
    else:
        console.print(plan_table(plan))
        console.print(f"{len(plan.changes)} changes, {len(plan.steps) - len(plan.changes)} waits.")
    for note in plan.notes:
        console.print(f"[yellow]kept[/]: {note}", highlight=False)


@app.command("plan")
def plan_command(schema_dir: Path | None = SCHEMA_DIR) -> None:
    """Show what `schema apply` would create or change; writes nothing."""
    settings = settings_or_exit()
    connector = build(settings)
    console = Console()
    try:
        _show(console, _installer(connector, schema_dir).plan())
    except ConnectorError as exc:
        console.print(f"[bold red]Schema plan failed[/]: {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        connector.close()


@app.command("apply")
def apply_command(
    schema_dir: Path | None = SCHEMA_DIR,
    key_timeout: float = typer.Option(600.0, help="Seconds to wait for alternate keys."),
    max_steps: int | None = typer.Option(
        None, "--max-steps", hidden=True, help="Stop after N changes (testing resumption)."
    ),
) -> None:
    """Create what is missing (publisher, solution, tables, columns, keys) and publish."""
    settings = settings_or_exit()
    connector = build(settings)
    console = Console()
    try:
        installer = _installer(connector, schema_dir, key_timeout=key_timeout)
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            report = installer.apply(progress=progress, max_steps=max_steps)
    except ConnectorError as exc:
        console.print(f"[bold red]Schema apply failed[/]: {exc.message}", highlight=False)
        console.print("Run `connector schema apply` again to finish the job.")
        raise typer.Exit(1) from None
    finally:
        connector.close()
    for note in report.plan.notes:
        console.print(f"[yellow]kept[/]: {note}", highlight=False)
    if not report.complete:
        console.print(f"Stopped after {len(report.done)} changes; run apply again to finish.")
        raise typer.Exit(3)
    console.print(f"Schema applied: {len(report.done)} changes.")
