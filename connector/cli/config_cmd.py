"""``connector config``: show the effective settings (secrets redacted) and make keys."""

from __future__ import annotations

import json

import typer
from cryptography.fernet import Fernet
from rich.console import Console

from connector.cli.common import settings_or_exit
from connector.settings import redacted

app = typer.Typer(help="Inspect and validate the connector's settings.", no_args_is_help=True)


@app.command("check")
def check(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Validate the settings and print them with every secret redacted."""
    settings = settings_or_exit(configure_logs=False)
    shown = redacted(settings)
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    console = Console()
    console.print("[bold green]Settings are valid.[/]")
    mode = "local (embedded emulator, simulated provider)" if settings.local_mode else "Dataverse"
    console.print(f"Mode: {mode}")
    for section, value in shown.items():
        if isinstance(value, dict):
            for key, item in value.items():
                console.print(f"  {section}.{key} = {item}", highlight=False)
        else:
            console.print(f"  {section} = {value}", highlight=False)


@app.command("new-key")
def new_key() -> None:
    """Print a new Fernet key for CONNECTOR_SECRET_KEYS (put the newest first to rotate)."""
    typer.echo(Fernet.generate_key().decode())
