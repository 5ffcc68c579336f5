"""``connector emulator``: run the local Dataverse emulator (local mode, demos, manual tests).

Serves the Web API at ``http://127.0.0.1:PORT/api/data/v9.2/`` from a SQLite file (kept
across restarts) or memory. ``--tls`` serves HTTPS with a self-signed certificate written
next to the database, for clients that refuse plain HTTP. Service-protection limits are off
unless asked for. An Entra-style token service answers MSAL at
``/<tenant>/oauth2/v2.0/token`` (use it with ``--tls``).
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from connector.cli.serve_cmd import bind_socket
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.limits import Limits
from connector.emulators.dataverse.router import Emulator
from connector.emulators.dataverse.tls import make_certificate
from connector.emulators.dataverse.token_service import TokenService


def emulator(
    *,
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8780,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    db: Annotated[
        Path | None, typer.Option(help="SQLite file to keep data in (default: memory).")
    ] = None,
    tls: Annotated[
        bool, typer.Option(help="Serve HTTPS with a self-signed loopback certificate.")
    ] = False,
    no_auth: Annotated[bool, typer.Option(help="Accept requests without a bearer token.")] = False,
    requests_per_window: Annotated[
        int | None, typer.Option(help="Service protection: requests per user per window.")
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option(help="Service protection: concurrent requests per user.")
    ] = None,
    execution_ms: Annotated[
        float | None, typer.Option(help="Service protection: execution ms per user per window.")
    ] = None,
    window_seconds: Annotated[float, typer.Option(help="Service protection window (s).")] = 300.0,
    key_delay: Annotated[float, typer.Option(help="Seconds a new key stays Pending.")] = 0.0,
    client: Annotated[
        list[str] | None,
        typer.Option(help="CLIENT_ID:SECRET the token service accepts (repeatable; default any)."),
    ] = None,
    validate_tokens: Annotated[
        bool, typer.Option(help="Accept only bearer tokens issued by the token service.")
    ] = False,
) -> None:
    """Run the Dataverse emulator."""
    limits = Limits(requests_per_window, window_seconds, max_concurrent, execution_ms)
    core = Emulator(str(db) if db else None, key_delay=key_delay)
    clients = dict(item.split(":", 1) for item in client or [] if ":" in item)
    tokens = TokenService(clients, validate=validate_tokens)
    app = create_emulator_app(
        limits=limits, token_required=not no_auth, emulator=core, tokens=tokens
    )
    try:
        sock = bind_socket(host, port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stall
    except OSError as exc:
        Console(stderr=True).print(f"[bold red]Cannot listen on {host}:{port}[/]: {exc.strerror}")
        raise typer.Exit(1) from None
    certfile, keyfile = _certificate(db) if tls else (None, None)
    where = f"file {db}" if db else "memory"
    url = f"{'https' if tls else 'http'}://{host}:{sock.getsockname()[1]}/api/data/v9.2/"
    typer.echo(f"Dataverse emulator listening on {url} ({where})")
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        core.store.close()


def _certificate(db: Path | None) -> tuple[Path, Path]:
    directory = db.parent if db else Path(tempfile.mkdtemp(prefix="emulator-tls-"))
    certfile, keyfile = make_certificate(directory)
    typer.echo(f"Certificate (trust it in your client): {certfile}")
    return certfile, keyfile


def register(app: typer.Typer) -> None:
    """Add ``emulator`` to the root command."""
    app.command("emulator")(emulator)
