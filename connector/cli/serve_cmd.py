"""``connector serve``: run the web service and its worker (a child process by default; local
mode with no Dataverse URL), and ``connector openapi``: print the HTTP API's OpenAPI document."""

from __future__ import annotations

import json
import socket

import typer
import uvicorn
from rich.console import Console

from connector.bootstrap import build, openapi_document, start_serve
from connector.bootstrap.cpu_slice import request_slice
from connector.bootstrap.heap import settle
from connector.bootstrap.http_protocol import header_timeout_protocol
from connector.bootstrap.local_mode import local_file, private_token
from connector.cli.common import settings_or_exit
from connector.errors import ConnectorError


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen before serving, so ``--port 0`` can report the port it really got."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only then,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from the moment the URL is printed
    sock.set_inheritable(True)
    return sock


def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to listen on (0 picks a free one)."),
    no_worker: bool = typer.Option(False, "--no-worker", help="Web only: no worker."),
    worker_in_process: bool = typer.Option(
        False,
        "--worker-in-process",
        help="Run the worker's threads in this process instead of a child process.",
    ),
) -> None:
    """Run the connector: web service and worker (local mode with no Dataverse URL)."""
    settings = settings_or_exit()
    request_slice(settings.server.cpu_slice_ms)  # before any thread starts: they inherit it
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        Console(stderr=True).print(f"[bold red]Cannot listen on {host}:{port}[/]: {exc.strerror}")
        raise typer.Exit(1) from None
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    base_url = f"http://{shown_host}:{bound_port}"
    settings, generated = private_token(settings, host)
    connector = build(
        settings,
        public_base_url=base_url,
        start_local=True,
        local_signing_token=generated,
        shared_pacing=True,
    )
    try:
        lines, child = start_serve(
            connector,
            port_is_default=bound_port == settings.server.port,
            worker=not no_worker,
            in_process=worker_in_process,
        )
    except ConnectorError as exc:
        connector.close()
        Console(stderr=True).print(f"[bold red]Cannot start[/]: {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    app = connector.app
    Console().print(f"Connector listening on {base_url}", highlight=False)
    if generated is not None:
        lines.insert(0, _beyond_loopback(base_url, str(local_file(settings, "local.json"))))
    for line in lines:
        Console(soft_wrap=True).print(line, highlight=False, markup=False)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        http=header_timeout_protocol(settings.server.header_timeout),
    )
    settle()  # start-up's heap frozen: full collections no longer walk it
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if child is not None:
            child.stop()
        connector.close()


def _beyond_loopback(base_url: str, descriptor: str) -> str:
    return (
        f"Local mode listening on {base_url}, beyond loopback: webhooks must be signed with a "
        "random signing token made for this run (the published local token is refused); "
        f"`connector simulate` in this directory reads it from {descriptor}."
    )


def openapi() -> None:
    """Print the HTTP API's OpenAPI document (JSON); needs no Dataverse and no state store."""
    typer.echo(json.dumps(openapi_document(), indent=2, sort_keys=False))


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``openapi`` to the root command."""
    app.command("serve")(serve)
    app.command("openapi")(openapi)
