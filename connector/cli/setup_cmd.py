"""``connector setup``: create or update one sender's configuration with its defaults.

``connector setup --sender NUMBER --provider twilio [--account-sid ...] [--auth-token ...]
[--default-country US]`` writes the configuration row (found by sender number), the default
record types and keywords and the callback URL, with the auth token encrypted by
``CONNECTOR_SECRET_KEYS``. Running it again updates the same row and adds nothing twice.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connector.bootstrap import build
from connector.cli.common import settings_or_exit
from connector.crm.configuration_store import DataverseConfigurationStore
from connector.domain.model import Provider
from connector.domain.provider_messages import CredentialReport
from connector.errors import ConnectorError
from connector.providers.twilio.client import TwilioProvider
from connector.secret_box import SecretBox
from connector.services.setup import CredentialCheck, SetupRequest, SetupResult, run_setup
from connector.settings import Settings


def summary(result: SetupResult) -> Table:
    """What setup left in Dataverse."""
    config = result.configuration
    table = Table(title="configuration " + ("created" if result.created else "updated"))
    table.add_column("field")
    table.add_column("value")
    rows = [
        ("id", config.id or ""),
        ("sender", config.sender_number),
        ("provider", config.provider.value),
        ("account id", config.account_id or ""),
        ("auth token", "stored encrypted" if config.secret else "not set"),
        ("callback URL", config.callback_url or "not set"),
        ("default country", config.default_country or ""),
        ("validation", f"{config.validation_status.value} {config.validation_message or ''}"),
        ("record types", ", ".join(f"{rt.table} {rt.priority}" for rt in result.record_types)),
        ("keywords", ", ".join(sorted(kw.keyword for kw in result.keywords))),
        ("added now", ", ".join((*result.added_record_types, *result.added_keywords)) or "-"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def setup(  # noqa: PLR0917 - typer maps each option to a parameter
    sender: Annotated[str, typer.Option("--sender", help="The sender number, e.g. +14155550100.")],
    provider: Annotated[Provider, typer.Option("--provider", help="The SMS provider.")] = (
        Provider.TWILIO
    ),
    account_sid: Annotated[
        str | None, typer.Option("--account-sid", help="Twilio account SID.")
    ] = None,
    auth_token: Annotated[
        str | None,
        typer.Option(
            "--auth-token",
            help="Twilio auth token, stored encrypted (default: CONNECTOR_TWILIO__AUTH_TOKEN).",
        ),
    ] = None,
    default_country: Annotated[
        str | None,
        typer.Option("--default-country", help="ISO region for numbers without a country code."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Display name of the configuration.")
    ] = None,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Check the credentials at Twilio.")
    ] = True,
) -> None:
    """Create or update a sender configuration with default record types and keywords."""
    settings = settings_or_exit()
    request = SetupRequest(
        sender=sender,
        provider=provider,
        account_sid=account_sid or settings.twilio.account_sid,
        auth_token=auth_token or _env_token(settings),
        default_country=default_country,
        name=name,
        public_base_url=str(settings.public_base_url) if settings.public_base_url else None,
    )
    check = _twilio_check(settings) if validate and provider is Provider.TWILIO else None
    _run(settings, request, check)


def _run(settings: Settings, request: SetupRequest, check: CredentialCheck | None) -> None:
    console = Console()
    if settings.local_mode:
        console.print("[bold red]No Dataverse URL[/]: set CONNECTOR_DATAVERSE__URL.")
        raise typer.Exit(2)
    connector = build(settings)
    try:
        store = DataverseConfigurationStore(connector.dataverse)
        result = run_setup(request, store, SecretBox(settings.secret_keys), check)
    except ConnectorError as exc:
        console.print(f"[bold red]Setup failed[/]: {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        connector.close()
    console.print(summary(result))
    for warning in result.warnings:
        console.print(f"[yellow]warning[/]: {warning}", highlight=False)
    if result.validation is not None and not result.validation.ok:
        raise typer.Exit(1)


def _env_token(settings: Settings) -> str | None:
    """CONNECTOR_TWILIO__AUTH_TOKEN: keeps the token out of the command line (and ``ps``)."""
    token = settings.twilio.auth_token
    return token.get_secret_value() if token is not None else None


def _twilio_check(settings: Settings) -> CredentialCheck:
    """Twilio's account fetch (the simulator's when CONNECTOR_TWILIO__API_BASE_URL is set)."""
    base = str(settings.twilio.api_base_url) if settings.twilio.api_base_url else None

    def check(account_sid: str, auth_token: str) -> CredentialReport:
        provider = TwilioProvider(account_sid, auth_token, api_base_url=base, max_attempts=2)
        return provider.validate_credentials()

    return check


def register(root: typer.Typer) -> None:
    """Add ``connector setup`` to the root app."""
    root.command("setup")(setup)
