"""``connector simulate inbound`` and ``connector simulator``: the local SMS side by hand.

``simulate inbound`` posts an inbound-message webhook signed exactly as Twilio signs it to a
running connector (``<url>/webhooks/twilio/messages``) and prints the connector's answer.
The target is ``--url``, else the public base URL, else the configured server address; the
signature is computed over the public base URL when one is configured (that is the URL the
connector checks), else over the URL posted to. The auth token is ``--auth-token``, else
``CONNECTOR_TWILIO__AUTH_TOKEN``, else (local mode only) the simulator's local token.

``simulator`` runs the Twilio-compatible simulator alone, for pointing a connector (or the
twilio SDK) at it with ``CONNECTOR_TWILIO__API_BASE_URL``.
"""

from __future__ import annotations

import json
import mimetypes

import requests
import typer
import uvicorn
from rich.console import Console

from connector.bootstrap.local_mode import local_signing_token
from connector.cli.common import settings_or_exit
from connector.cli.serve_cmd import bind_socket
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.emulators.twilio.numbers import new_sid, segments
from connector.providers.twilio.endpoints import (
    LOCAL_ACCOUNT_SID,
    LOCAL_AUTH_TOKEN,
    TWILIO_INBOUND_PATH,
    inbound_webhook_url,
)
from connector.providers.twilio.forms import build_inbound_form
from connector.providers.twilio.signature import SIGNATURE_HEADER, compute_signature
from connector.settings import Settings

app = typer.Typer(help="Simulate the SMS provider against a running connector.")
err = Console(stderr=True)


def _token(settings: Settings, given: str | None) -> str:
    if given:
        return given
    if settings.twilio.auth_token is not None:
        return settings.twilio.auth_token.get_secret_value()
    if settings.local_mode:  # the token `serve` made for a run beyond loopback, if it did
        return local_signing_token(settings) or LOCAL_AUTH_TOKEN
    err.print("[bold red]No auth token[/]: pass --auth-token or set CONNECTOR_TWILIO__AUTH_TOKEN.")
    raise typer.Exit(2)


def _base(settings: Settings, given: str | None) -> str:
    if given:
        return given.rstrip("/")
    if settings.public_base_url is not None:
        return str(settings.public_base_url).rstrip("/")
    host = settings.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a client here
    return f"http://{host}:{settings.server.port}"


@app.command("inbound")
def inbound(  # noqa: PLR0917 - typer maps each option to a parameter
    from_: str = typer.Option(..., "--from", help="The customer's number, e.g. +14155550199."),
    to: str = typer.Option(..., "--to", help="Our sender number that receives the message."),
    body: str = typer.Option("", "--body", help="Message text."),
    media: list[str] = typer.Option([], "--media", help="Media URL (repeat for several)."),  # noqa: B008
    url: str | None = typer.Option(None, "--url", help="Connector base URL."),
    auth_token: str | None = typer.Option(None, "--auth-token", help="Token to sign with."),
) -> None:
    """Post a signed inbound SMS/MMS webhook to a running connector."""
    settings = settings_or_exit(configure_logs=False)
    token = _token(settings, auth_token)
    target = _base(settings, url) + TWILIO_INBOUND_PATH
    signed_url = inbound_webhook_url(str(settings.public_base_url)) if (
        settings.public_base_url is not None
    ) else target  # fmt: skip
    items = [(m, mimetypes.guess_type(m)[0] or "application/octet-stream") for m in media]
    form = build_inbound_form(
        message_sid=new_sid("MM" if items else "SM"),
        account_sid=settings.twilio.account_sid or LOCAL_ACCOUNT_SID,
        from_number=from_,
        to_number=to,
        body=body,
        media=items,
        num_segments=segments(body),
    )
    headers = {SIGNATURE_HEADER: compute_signature(signed_url, form, token)}
    try:
        answer = requests.post(target, data=form, headers=headers, timeout=30)
    except requests.RequestException as exc:
        err.print(f"[bold red]Could not reach {target}[/]: {type(exc).__name__}", highlight=False)
        raise typer.Exit(1) from None
    out = Console()
    out.print(f"POST {target} -> {answer.status_code}", highlight=False)
    if answer.text:
        out.print(answer.text, highlight=False, markup=False)
    if answer.status_code >= 300:
        raise typer.Exit(1)


def simulator(  # noqa: PLR0917 - typer maps each option to a parameter
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8099, help="Port to listen on (0 picks a free one)."),
    inbound_url: str | None = typer.Option(None, help="Connector inbound webhook URL."),
    number: list[str] = typer.Option(  # noqa: B008 - typer's way to declare an option
        [],
        "--number",
        help="A number of the simulated account, its SmsUrl the --inbound-url (repeatable).",
    ),
    out_of_order: bool = typer.Option(False, help="Deliver status callbacks in reverse order."),
    duplicate: bool = typer.Option(False, help="Deliver every status callback twice."),
    rate_limit: float | None = typer.Option(
        None, help="Refuse (429/20429) a sender going faster than this many messages/s."
    ),
    rate_limits: str | None = typer.Option(
        None, help='Per-sender limits as JSON, e.g. {"+14155550100": 5}.'
    ),
) -> None:
    """Run the Twilio-compatible SMS simulator alone."""
    settings = settings_or_exit()
    try:
        per_sender = {str(k): float(v) for k, v in json.loads(rate_limits or "{}").items()}
    except (ValueError, AttributeError, TypeError):
        err.print("[bold red]--rate-limits[/]: expected a JSON object of number -> rate")
        raise typer.Exit(2) from None
    options = SimulatorOptions(
        account_sid=settings.twilio.account_sid or LOCAL_ACCOUNT_SID,
        auth_token=_token(settings, None),
        inbound_url=inbound_url,
        out_of_order=out_of_order,
        duplicate=duplicate,
        sender_rate_limit_mps=rate_limit,
        sender_rate_limits=per_sender,
        numbers=dict.fromkeys(number),
    )
    engine = SimulatorEngine(options)
    sock = bind_socket(host, port)
    Console().print(f"Simulator listening on http://{host}:{sock.getsockname()[1]}",
                    highlight=False)  # fmt: skip
    config = uvicorn.Config(create_simulator_app(engine), log_config=None, access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        engine.close()


def register(root: typer.Typer) -> None:
    """Add ``simulate ...`` and ``simulator`` to the root command."""
    root.add_typer(app, name="simulate")
    root.command("simulator")(simulator)
