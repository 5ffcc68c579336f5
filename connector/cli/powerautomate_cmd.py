"""``connector powerautomate export``: the Power Automate custom connector's files.

Writes ``apiDefinition.swagger.json`` (Swagger 2.0 made from the service's own routes),
``apiProperties.json`` (the API key connection parameter) and a ``README.md`` for makers.
The host comes from ``--host``, else ``CONNECTOR_PUBLIC_BASE_URL``, else a placeholder (the
files checked in under ``integrations/powerautomate/`` use the placeholder).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from connector.api.powerautomate import connector_files

app = typer.Typer(help="The Power Automate custom connector.", no_args_is_help=True)


@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", help="Directory to write the files to."),  # noqa: B008
    host: str | None = typer.Option(
        None, "--host", help="The connector's public URL (default: CONNECTOR_PUBLIC_BASE_URL)."
    ),
) -> None:
    """Write apiDefinition.swagger.json, apiProperties.json and README.md."""
    url = host or os.environ.get("CONNECTOR_PUBLIC_BASE_URL") or None
    if url is not None and not url.startswith(("https://", "http://")):
        Console(stderr=True).print("[bold red]--host must be an http(s) URL[/]")
        raise typer.Exit(2)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in connector_files(url).items():
        (out / name).write_text(text, encoding="utf-8")
    Console().print(f"Wrote the custom connector to {out}", highlight=False)
