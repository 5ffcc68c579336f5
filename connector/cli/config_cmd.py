"""``connector config``: check the settings for what will break in production (and print them,
secrets redacted), and make keys.

The checks themselves are in :mod:`connector.bootstrap.config_check`; this is their output.
"""

from __future__ import annotations

import json

import typer
from cryptography.fernet import Fernet
from rich.console import Console

from connector.bootstrap.config_check import CheckReport, Severity, run_checks
from connector.cli.common import settings_or_exit
from connector.log_config import configure_logging
from connector.settings import redacted

app = typer.Typer(help="Inspect and validate the connector's settings.", no_args_is_help=True)
_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow"}


@app.command("check")
def check(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    offline: bool = typer.Option(
        False, "--offline", help="Check the settings alone: ask neither Dataverse nor Twilio."
    ),
) -> None:
    """Validate the settings, print them with every secret redacted, and flag what will break
    in production (exit code 1 when anything will)."""
    settings = settings_or_exit(configure_logs=False)
    configure_logging("WARNING", settings.log.format)  # on stderr: stdout stays the report
    report = run_checks(settings, offline=offline)
    shown = redacted(settings)
    if as_json:
        document = {**shown, "findings": [finding.as_dict() for finding in report.findings]}
        typer.echo(json.dumps(document, indent=2))
    else:
        _print(shown, report, local=settings.local_mode)
    if report.failed:
        raise typer.Exit(1)


def _print(shown: dict[str, object], report: CheckReport, *, local: bool) -> None:
    console = Console()
    console.print("[bold green]Settings are valid.[/]")
    mode = "local (embedded emulator, simulated provider)" if local else "Dataverse"
    console.print(f"Mode: {mode}")
    for section, value in shown.items():
        if isinstance(value, dict):
            for key, item in value.items():
                console.print(f"  {section}.{key} = {item}", highlight=False)
        else:
            console.print(f"  {section} = {value}", highlight=False)
    if not report.online:
        console.print("Offline: configurations and provider numbers were not checked.")
    if not report.findings:
        console.print("[bold green]No problems found for production.[/]")
        return
    for finding in report.findings:
        style = _STYLE[finding.severity]
        console.print(f"[{style}]{finding.severity.value}[/] {finding.code}: ", end="")
        console.print(finding.message, highlight=False, markup=False)


@app.command("new-key")
def new_key() -> None:
    """Print a new Fernet key for CONNECTOR_SECRET_KEYS (put the newest first to rotate)."""
    typer.echo(Fernet.generate_key().decode())
