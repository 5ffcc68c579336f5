"""``connector send --to N --body TEXT``: send one SMS through the one send path.

The message goes into the outbox of this folder's state store (the same checks as the HTTP
API: number, sender, template, body) and the running worker (``connector serve`` or
``connector worker``) sends it. The command prints the message id, then each status as the
provider's callbacks move it (``--no-wait`` returns at once).
"""

from __future__ import annotations

import json
import time

import typer
from rich.console import Console

from connector.bootstrap import Connector, build
from connector.cli.common import settings_or_exit
from connector.domain.model import MessageCategory
from connector.domain.routing import RecordRef
from connector.domain.status import FINAL_STATUSES, MessageStatus
from connector.errors import ConnectorError
from connector.services.outbound import SendOrder

out = Console()
err = Console(stderr=True)


def _regarding(value: str | None) -> RecordRef | None:
    if value is None:
        return None
    table, sep, record_id = value.partition(":")
    if not sep or not table or not record_id:
        err.print(f"[bold red]--regarding[/]: expected table:id, got {value!r}", highlight=False)
        raise typer.Exit(2)
    return RecordRef(table.strip().lower(), record_id.strip())


def register(app: typer.Typer) -> None:
    """Add ``send`` to the root command."""

    @app.command("send")
    def send(  # noqa: PLR0917 - typer maps each option to a parameter
        to: str | None = typer.Option(None, "--to", help="Recipient number (E.164 best)."),
        body: str | None = typer.Option(None, "--body", help="The text."),
        from_number: str | None = typer.Option(None, "--from", help="Sender number."),
        template: str | None = typer.Option(None, "--template", help="Template id."),
        regarding: str | None = typer.Option(
            None, "--regarding", help="The record, as table:id (e.g. contact:<guid>)."
        ),
        category: MessageCategory | None = typer.Option(None, "--category"),  # noqa: B008
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the status."),
        timeout: float = typer.Option(60.0, "--timeout", help="Seconds to follow the status."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
    ) -> None:
        """Send one SMS and follow its status."""
        settings = settings_or_exit()
        connector = build(settings)
        order = SendOrder(
            body=body,
            to=to,
            from_number=from_number,
            template_id=template,
            regarding=_regarding(regarding),
            category=category,
        )
        try:
            answer = connector.sender.send(order)
            connector.outbound_tasks.enqueue_send()  # the worker of this folder sends it
            if as_json:
                out.print_json(json.dumps(answer))
            else:
                out.print(
                    f"{answer['id']} queued to {answer['to']} from {answer['from']} "
                    f"({answer['segments']} segment(s), {answer['encoding']})",
                    highlight=False,
                )
            if wait:
                _follow(connector, str(answer["id"]), timeout, as_json)
        except ConnectorError as exc:
            err.print(f"[bold red]Not sent[/] ({exc.code}): {exc.message}", highlight=False)
            raise typer.Exit(1) from None
        finally:
            connector.close()


def _follow(connector: Connector, message_id: str, timeout: float, as_json: bool) -> None:
    """Print each new status of the message until it is final or ``timeout`` passes."""
    outbox = connector.outbox
    seen: MessageStatus | None = MessageStatus.QUEUED
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = outbox.get(message_id)
        if message is not None and message.status is not seen:
            seen = message.status
            reason = f": {message.failure.reason}" if message.failure else ""
            if as_json:
                out.print_json(json.dumps({"id": message_id, "status": seen.value}))
            else:
                out.print(f"{message_id} {seen.value}{reason}", highlight=False)
            if seen in FINAL_STATUSES:
                return
        time.sleep(0.2)
    err.print(f"still {seen.value if seen else 'unknown'} after {timeout:g} s", highlight=False)
