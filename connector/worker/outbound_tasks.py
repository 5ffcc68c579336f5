"""Worker tasks of the send path: sending due messages, and writing them to Dataverse.

``send_outbox`` runs one :meth:`OutboxSender.run_once
<connector.services.outbox_sender.OutboxSender.run_once>` and queues itself again while
messages are due (or for when the next one is). ``sync_outbound`` writes outbox changes to
Dataverse; it is asked for ``linger`` seconds after a change, so the changes of many messages
share one ``$batch``. ``sweep_outbox`` (every minute) runs both, the net under lost wake-ups.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab

from connector.services.outbound_sync import OutboundSync
from connector.services.outbox_sender import OutboxSender
from connector.worker.tasks import FollowUp

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

    def sync_soon() -> None:
        at = time.time() + sync.linger
        if sync_follow_up.want(at):
            sync_task.schedule(delay=sync.linger)

    def run_send() -> None:
        send_follow_up.started()
        cycle = sender.run_once()
        if cycle.next_due is None:
            return
        if cycle.next_due <= time.time():
            send_task()
        elif send_follow_up.want(cycle.next_due):
            send_task.schedule(delay=max(0.0, cycle.next_due - time.time()))

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
