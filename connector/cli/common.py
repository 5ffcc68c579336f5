"""What every CLI command shares: loading settings with a readable failure, logging."""

from __future__ import annotations

import typer
from rich.console import Console

from connector.errors import ConfigurationError
from connector.log_config import configure_logging
from connector.settings import Settings, load_settings

console = Console(stderr=True)


def settings_or_exit(*, configure_logs: bool = True) -> Settings:
    """Load settings; on a bad one print what is wrong (naming the variable) and exit 2."""
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        console.print(f"[bold red]Configuration error[/]: {exc.message}", highlight=False)
        raise typer.Exit(2) from None
    if configure_logs:
        configure_logging(settings.log.level, settings.log.format)
    return settings
