"""Worker tasks of the send path: sending due messages, and writing them to Dataverse.

``send_outbox`` runs :meth:`OutboxSender.run_once
<connector.services.outbox_sender.OutboxSender.run_once>` cycles back to back while messages
are due (a round trip through the queue between cycles would cost each sender its rate), one
sending thread per process, for at most ``SEND_BUDGET_SECONDS`` before it hands over to a
fresh task; then it is scheduled for when the next message is due.
``sync_outbound`` writes outbox changes to
Dataverse; it is asked for ``linger`` seconds after a change, so the changes of many messages
share one ``$batch``. ``sweep_outbox`` (every minute) runs both, the net under lost wake-ups.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab

from connector.services.outbound_sync import OutboundSync
from connector.services.outbox_sender import OutboxSender
from connector.worker.tasks import FollowUp

SEND_BUDGET_SECONDS = 30.0
"""How long one send task keeps sending before it hands over to a fresh task."""
IDLE_SECONDS = 0.2
"""A message due within this long is waited for in the same task."""
SEND_TASK = "send_outbox"
SYNC_TASK = "sync_outbound"
SWEEP_TASK = "sweep_outbox"


@dataclass
class OutboundTasks:
    """The send and sync tasks on the queue."""

    send: Any
    sync: Any
    sweep: Any
    sync_soon: Any

    def enqueue_send(self) -> None:
        """Queue one send cycle."""
        self.send()


def register_outbound(huey: Huey, sender: OutboxSender, sync: OutboundSync) -> OutboundTasks:
    """Put the send, sync and sweep tasks on ``huey``; the sender's and the status news'
    changes ask for a sync ``sync.linger`` seconds later (coalesced per process)."""
    send_follow_up, sync_follow_up = FollowUp(), FollowUp()
    running = threading.Lock()

    def sync_soon() -> None:
        at = time.time() + sync.linger
        if sync_follow_up.want(at):
            sync_task.schedule(delay=sync.linger)

    def run_send() -> None:
        send_follow_up.started()
        if not running.acquire(blocking=False):
            return  # this process already has a thread sending: it will see the new work
        try:
            started = time.monotonic()
            while True:
                cycle = sender.run_once()
                due = cycle.next_due
                if due is None or due > time.time() + IDLE_SECONDS:
                    break
                if time.monotonic() - started > SEND_BUDGET_SECONDS:
                    send_task()  # let other tasks have the thread; carry on in a new one
                    return
                time.sleep(max(0.0, min(due - time.time(), IDLE_SECONDS)))
        finally:
            running.release()
        if due is not None and send_follow_up.want(due):
            send_task.schedule(delay=max(0.0, due - time.time()))

    def run_sync() -> None:
        sync_follow_up.started()
        result = sync.run_once()
        if result.next_due is None:
            return
        at = max(result.next_due, time.time() + sync.linger)
        if sync_follow_up.want(at):
            sync_task.schedule(delay=max(0.0, at - time.time()))

    def run_sweep() -> None:
        run_send()
        run_sync()

    sender.on_change = sync_soon
    send_task = huey.task(name=SEND_TASK)(run_send)
    sync_task = huey.task(name=SYNC_TASK)(run_sync)
    sweep = huey.periodic_task(crontab(minute="*"), name=SWEEP_TASK)(run_sweep)
    return OutboundTasks(send=send_task, sync=sync_task, sweep=sweep, sync_soon=sync_soon)
