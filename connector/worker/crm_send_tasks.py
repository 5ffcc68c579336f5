"""The poll for rows created in Dataverse (sends that start in Dynamics), on the queue.

``poll_crm_sends`` runs :meth:`CrmSends.poll <connector.services.crm_sends.CrmSends.poll>`
every ``interval`` seconds: each run schedules the next (coalesced per process), and a
periodic task every minute polls too (and restarts the chain) should a wake-up be lost.
Each process keeps its own chain, so a run takes a queue-wide lock
(``huey.lock_task``) and the poll itself skips its turn when another process polled less than
an interval ago (the time is in the state store): one request per interval for the fleet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab
from huey.exceptions import TaskLockedException

from connector.errors import ConnectorError
from connector.log_config import get_logger
from connector.services.crm_sends import CrmSends, PollReport
from connector.worker.tasks import FollowUp

log = get_logger(__name__)

POLL_TASK = "poll_crm_sends"
KICK_TASK = "kick_crm_sends_poll"
LOCK = "crm-sends-poll"


@dataclass
class CrmSendTasks:
    """The poll task and its once-a-minute restart."""

    poll: Any
    kick: Any

    def start(self) -> None:
        """Queue one poll now (the chain goes on from it)."""
        self.poll()


def run_locked(huey: Huey, sends: CrmSends) -> PollReport | None:
    """One poll unless another process holds the lock or polled just now (then None)."""
    try:
        with huey.lock_task(LOCK):
            return sends.poll()
    except TaskLockedException:
        return None
    except ConnectorError as exc:  # Dataverse away: the next interval tries again
        log.warning("crm_send.poll_skipped", code=exc.code, reason=exc.message[:200])
        return None


def register_crm_sends(huey: Huey, sends: CrmSends) -> CrmSendTasks:
    """Put the poll on ``huey`` (every ``sends.interval`` seconds)."""
    follow_up = FollowUp()

    def poll_crm_sends() -> PollReport | None:
        follow_up.started()
        try:
            return run_locked(huey, sends)
        finally:
            if follow_up.want(time.time() + sends.interval):
                poll_task.schedule(delay=sends.interval)

    def kick_crm_sends_poll() -> PollReport | None:
        return poll_crm_sends()  # skipped by the poll itself when the chain just ran

    poll_task = huey.task(name=POLL_TASK)(poll_crm_sends)
    kick = huey.periodic_task(crontab(minute="*"), name=KICK_TASK)(kick_crm_sends_poll)
    return CrmSendTasks(poll=poll_task, kick=kick)
