"""``connector dataverse register-webhook``: have Dataverse post new SMS message rows to us.

Creates (or brings up to date) the ``serviceendpoint`` (a webhook to
``<public base URL>/webhooks/dataverse``, HttpHeader auth with the connector's key) and its
``sdkmessageprocessingstep`` (Create of the SMS message table, asynchronous, post-operation)
through the Web API. Idempotent like ``schema apply``: a second run writes nothing. The key
is generated on first use and stored encrypted with ``CONNECTOR_SECRET_KEYS`` in the state
store (every web process reads it there); ``--rotate-key`` makes a new one (the previous one
stays accepted for a day); ``--remove`` deletes the step and the endpoint. Rows are still
sent without the webhook: the worker polls for them (``CONNECTOR_WORKER__DATAVERSE_POLL_SECONDS``).
"""

from __future__ import annotations

import typer
from rich.console import Console

from connector.api.dataverse_webhook import DATAVERSE_PATH
from connector.bootstrap import Connector, build
from connector.bootstrap.local_mode import local_value
from connector.cli.common import settings_or_exit
from connector.crm.webhook_registration import RegistrationReport
from connector.errors import ConnectorError

app = typer.Typer(help="Dataverse integration: the webhook that sends new SMS rows.")


def _url(connector: Connector, given: str | None) -> str:
    base = given or connector.public_base_url
    if base is None and connector.settings.local_mode:
        base = local_value(connector.settings, "public_base_url")
    if not base:
        Console(stderr=True).print(
            "[bold red]No public URL[/]: set CONNECTOR_PUBLIC_BASE_URL (the HTTPS URL Dataverse "
            "reaches this connector at) or give --base-url."
        )
        raise typer.Exit(2)
    return base.rstrip("/") + DATAVERSE_PATH


def _show(console: Console, report: RegistrationReport, url: str | None) -> None:
    for change in report.changes:
        console.print(f"  {change}", highlight=False)
    if url is None:
        said = "Removed." if report.changes else "Nothing to remove: no webhook is registered."
        console.print(said)
        return
    if not report.changes:
        console.print("Nothing to do: the webhook is registered.")
    console.print(
        f"Webhook {url} (service endpoint {report.endpoint_id}, step {report.step_id}).",
        highlight=False,
    )


@app.command("register-webhook")
def register_webhook(
    base_url: str | None = typer.Option(
        None, "--base-url", help="Public base URL (default: CONNECTOR_PUBLIC_BASE_URL)."
    ),
    rotate_key: bool = typer.Option(False, "--rotate-key", help="Make and register a new key."),
    remove: bool = typer.Option(False, "--remove", help="Delete the step and the endpoint."),
) -> None:
    """Register (or update) the Dataverse webhook for SMS rows created in Dynamics."""
    settings = settings_or_exit()
    connector = build(settings)
    console = Console()
    try:
        registration = connector.webhook_registration
        keys = connector.webhook_keys
        if remove:
            report = registration.remove()
            keys.forget()
            _show(console, report, None)
            return
        url = _url(connector, base_url)
        if rotate_key:
            key, push = keys.rotate(), True
        else:
            key, push = keys.ensure()
        report = registration.ensure(url, key, key_changed=push)
        if push:
            keys.mark_pushed()
        _show(console, report, url)
    except ConnectorError as exc:
        console.print(f"[bold red]Webhook registration failed[/]: {exc.message}", highlight=False)
        console.print("Run the command again to finish the job.")
        raise typer.Exit(1) from None
    finally:
        connector.close()
