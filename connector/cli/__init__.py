"""The ``connector`` command line (typer + rich).

The root app lives here; each area registers its own sub-commands from a module of this
package (``serve``, ``config``, ...), so no single file grows into a grab bag.
"""

from __future__ import annotations

import typer

from connector import __version__
from connector.cli import (
    config_cmd,
    dataverse_cmd,
    emulator_cmd,
    export_cmd,
    powerautomate_cmd,
    schema_cmd,
    send_cmd,
    serve_cmd,
    setup_cmd,
    simulate_cmd,
    sync_cmd,
    worker_cmd,
)

app = typer.Typer(
    name="connector",
    help="Two-way SMS for Microsoft Dataverse through Twilio.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"connector {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Two-way SMS for Microsoft Dataverse through Twilio."""


serve_cmd.register(app)
emulator_cmd.register(app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(sync_cmd.app, name="sync")
app.add_typer(schema_cmd.app, name="schema")
app.add_typer(dataverse_cmd.app, name="dataverse")
setup_cmd.register(app)
simulate_cmd.register(app)
worker_cmd.register(app)
send_cmd.register(app)
app.add_typer(export_cmd.app, name="export")
app.add_typer(powerautomate_cmd.app, name="powerautomate")


def main() -> None:
    """Console-script entry point."""
    app()
