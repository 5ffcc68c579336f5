"""``connector worker`` (the worker alone) and ``connector journal status|replay``.

``worker`` processes the ingress journal with huey's consumer in the foreground (Ctrl-C or
SIGTERM stops it after the running task). In local mode it reaches the emulator started by
``connector serve`` in the same directory. ``journal replay`` makes parked (poison) events
due again, after the cause was fixed; ``journal status`` shows the counts and the errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from huey.consumer import Consumer
from rich.console import Console
from rich.table import Table

from connector.bootstrap import Connector, build, warm
from connector.bootstrap.cpu_slice import request_slice
from connector.bootstrap.heap import settle
from connector.bootstrap.process import follow_parent
from connector.cli.common import settings_or_exit
from connector.errors import ConnectorError
from connector.log_config import get_logger
from connector.state.journal import Journal
from connector.worker.queue import POLL_MAX_DELAY

err = Console(stderr=True)
log = get_logger(__name__)
journal_app = typer.Typer(help="Inspect and replay the ingress journal.", no_args_is_help=True)


def worker(
    threads: int | None = typer.Option(None, min=1, max=32, help="Worker threads."),
) -> None:
    """Process inbound messages from the journal (no web server)."""
    follow_parent()
    settings = settings_or_exit()
    request_slice(0)  # the kernel's default slice, not the one a serve parent asked for
    connector = build(settings, shared_pacing=True)
    try:
        _ = connector.dataverse  # fails early when no Dataverse (or local mode) is reachable
        warm(connector, sync_phones=False)
        huey = connector.queue_tasks()
    except ConnectorError as exc:
        connector.close()
        err.print(f"[bold red]Cannot start the worker[/]: {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    threads = threads or settings.worker.threads
    Console().print(f"Worker running with {threads} thread(s)", highlight=False)
    _take_over(connector)
    settle()
    try:
        Consumer(huey, workers=threads, worker_type="thread", max_delay=POLL_MAX_DELAY).run()
    finally:
        connector.close()


def _take_over(connector: Connector) -> None:
    """Queue a first run of each drain: whatever is due, leases of a dead worker included.

    A queue that cannot be reached now (Redis restarting: its parent restarts a dead worker
    at once) is no reason to die: the consumer waits for it, and the once-a-minute sweeps
    and the web's nudges queue the same runs once it is back.
    """
    starts = (
        connector.tasks.enqueue,
        connector.outbound_tasks.enqueue_send,
        connector.bulk_tasks.enqueue,
        connector.event_tasks.enqueue,
    )
    for start in starts:
        try:
            start()
        except Exception as exc:  # the queue backend's own errors (redis, sqlite)
            log.warning("worker.start_enqueue_failed", error=type(exc).__name__)


@contextmanager
def _journal() -> Iterator[Journal]:
    connector = build(settings_or_exit())
    try:
        yield connector.journal
    finally:
        connector.close()


@journal_app.command("status")
def status() -> None:
    """Pending, done and parked events, and the latest errors."""
    with _journal() as journal:
        counts = journal.counts()
        errors = journal.errors(limit=20)
    Console().print(
        f"pending {counts.pending}  done {counts.done}  error {counts.error}", highlight=False
    )
    if errors:
        table = Table("id", "event", "attempts", "last error")
        for row in errors:
            table.add_row(str(row["id"]), row["event_id"], str(row["attempts"]), row["last_error"])
        Console().print(table)


@journal_app.command("replay")
def replay(
    ids: list[int] = typer.Argument(None, help="Journal ids (default: every parked event)."),  # noqa: B008
) -> None:
    """Make parked events due again (a running worker picks them up within a minute)."""
    with _journal() as journal:
        count = journal.replay(ids or None)
    Console().print(f"{count} event(s) queued again", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``worker`` and ``journal`` to the root command."""
    app.command("worker")(worker)
    app.add_typer(journal_app, name="journal")
