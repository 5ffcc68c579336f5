"""The consent ledger's Dataverse sync on the queue.

``push_consent`` writes local consent changes to Dataverse; it is asked for ``LINGER``
seconds after a change (so a burst of STOPs shares one ``$batch``) and runs again while
changes wait. ``sync_consent`` (every minute) pulls what administrators changed in Dataverse
into the local ledger and pushes anything left behind; one process of the fleet queues each
minute's run (:class:`~connector.worker.queue.OncePerPeriodHuey`), and a run takes a
queue-wide lock so one still going makes the next skip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab
from huey.exceptions import TaskLockedException

from connector.errors import ConnectorError
from connector.log_config import get_logger
from connector.services.consent_sync import ConsentSync
from connector.worker.tasks import FollowUp

log = get_logger(__name__)

PUSH_TASK = "push_consent"
SYNC_TASK = "sync_consent"
LOCK = "consent-sync"
LINGER = 0.5


@dataclass
class ConsentTasks:
    """The push and the periodic sync."""

    push: Any
    sync: Any
    push_soon: Any


def register_consent(huey: Huey, sync: ConsentSync) -> ConsentTasks:
    """Put the consent push and the periodic pull on ``huey``."""
    follow_up = FollowUp()

    def push_soon() -> None:
        if follow_up.want(time.time() + LINGER):
            push_task.schedule(delay=LINGER)

    def push_consent() -> int:
        follow_up.started()
        return sync.push()

    def sync_consent() -> int:
        try:
            with huey.lock_task(LOCK):
                pulled = sync.pull()
                while sync.push():
                    pass
                return pulled
        except TaskLockedException:
            return 0
        except ConnectorError as exc:  # Dataverse away: the next minute tries again
            log.warning("consent.sync_skipped", code=exc.code, reason=exc.message[:200])
            return 0

    push_task = huey.task(name=PUSH_TASK)(push_consent)
    periodic = huey.periodic_task(crontab(minute="*"), name=SYNC_TASK)(sync_consent)
    return ConsentTasks(push=push_task, sync=periodic, push_soon=push_soon)
