"""Idle-timeout escalation in the running service, against the emulator over HTTP.

The whole inbound stack of ``test_webhook_emulator`` (signed webhook, journal, worker, the
emulator with the schema and demo rows); the demo configuration gets an owning team of two
users. Sweeps run with a clock the test moves (or, for the worker's periodic task, on a wait
back-dated in the session mirror), and the team alerts are read back from the emulator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import requests

from connector.crm.conversations import DataverseConversations
from connector.crm.phone_directory import DataversePhoneDirectory
from connector.dataverse.client import DataverseClient
from connector.domain.conversation import EscalationWrite
from connector.services.escalation import EscalationService
from tests.integration.test_webhook_emulator import API_KEY, Stack, stack

__all__ = ["stack"]  # the fixture, imported for pytest

WAITING = "is waiting"  # in the title of a team alert (inbound notifications say "New SMS")


@dataclass
class Clock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


class CountingWriter(DataverseConversations):
    """The real adapter, counting the alerts it was asked to write."""

    def __init__(self, client: DataverseClient) -> None:
        super().__init__(client)
        self.written: list[tuple[str, str]] = []

    def write_escalations(self, writes: Sequence[EscalationWrite]) -> list[Exception | None]:
        self.written.extend((w.session.id, user) for w in writes for user in w.notify)
        return super().write_escalations(writes)


def _give_the_demo_configuration_a_team(stack: Stack) -> list[str]:
    root = f"{stack.emulator}/api/data/v9.2/"
    team = stack.client.create("teams", {"name": "Inside sales"})
    users = [
        stack.client.create("systemusers", {"firstname": name, "lastname": "Agent"})
        for name in ("Ana", "Ben")
    ]
    for user in users:
        answer = requests.post(
            root + f"teams({team})/teammembership_association/$ref",
            json={"@odata.id": f"{root}systemusers({user})"},
            headers={"Authorization": "Bearer emulator"},
            timeout=10,
        )
        assert answer.status_code == 204, answer.text
    (config,) = stack.client.query("smsc_configurations")
    stack.client.update(
        "smsc_configurations",
        config["smsc_configurationid"],
        {"smsc_OwningTeamId@odata.bind": f"/teams({team})"},
    )
    stack.runtime.configurations.invalidate()
    return sorted(users)


def _sweeper(stack: Stack, clock: Clock, writer: CountingWriter | None = None) -> EscalationService:
    return EscalationService(
        stack.runtime.configurations,
        stack.runtime.sessions,
        writer or CountingWriter(stack.client),
        DataversePhoneDirectory(stack.client).team_members,
        clock=clock,
    )


def _alerts(stack: Stack) -> list[dict[str, object]]:
    return [n for n in stack.client.query("appnotifications") if WAITING in str(n["title"])]


def _first_session(stack: Stack, body: str = "anyone there?") -> str:
    stack.send(body)
    stack.wait_done(1)
    (message,) = stack.messages()
    return str(message["_smsc_sessionid_value"])


def test_after_the_idle_timeout_each_team_member_gets_exactly_one_alert(stack: Stack) -> None:
    users = _give_the_demo_configuration_a_team(stack)
    session_id = _first_session(stack)
    clock = Clock()
    sweeper = _sweeper(stack, clock)
    clock.now += 4 * 60
    assert sweeper.sweep().escalated == 0
    assert _alerts(stack) == []
    clock.now += 2 * 60
    assert sweeper.sweep().escalated == 1
    clock.now += 60
    assert sweeper.sweep().escalated == 0
    alerts = _alerts(stack)
    assert sorted(str(a["_ownerid_value"]) for a in alerts) == users
    assert all(session_id in str(a["data"]) for a in alerts)  # "Open conversation" links it


def test_an_accept_before_the_idle_timeout_means_no_alert(stack: Stack) -> None:
    _give_the_demo_configuration_a_team(stack)
    session_id = _first_session(stack)
    answer = requests.post(
        f"{stack.url}/api/v1/sessions/{session_id}/accept",
        json={"user_id": "00000000-0000-0000-0000-00000000aa01"},
        headers={"X-API-Key": API_KEY},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    clock = Clock(time.time() + 10 * 60)
    assert _sweeper(stack, clock).sweep().escalated == 0
    assert _alerts(stack) == []


def test_two_racing_sweeps_alert_the_team_once(stack: Stack) -> None:
    users = _give_the_demo_configuration_a_team(stack)
    session_id = _first_session(stack)
    clock = Clock(time.time() + 6 * 60)
    writer = CountingWriter(stack.client)
    sweepers = [_sweeper(stack, clock, writer) for _ in range(2)]
    config = next(iter(stack.runtime.configurations.snapshot().values()))
    both_read = threading.Barrier(2)
    escalated: list[int] = []

    def sweep(sweeper: EscalationService) -> None:
        found = sweeper.candidates(config)  # both read the session as not yet escalated
        both_read.wait(timeout=10)
        escalated.append(sweeper.escalate(config, found).escalated)

    threads = [threading.Thread(target=sweep, args=(s,)) for s in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(escalated) == [0, 1]
    assert sorted(writer.written) == [(session_id, user) for user in users]
    assert sorted(str(a["_ownerid_value"]) for a in _alerts(stack)) == users


def test_the_worker_task_alerts_the_team_about_a_wait_older_than_the_idle_timeout(
    stack: Stack,
) -> None:
    users = _give_the_demo_configuration_a_team(stack)
    session_id = _first_session(stack)
    session = stack.runtime.sessions.get(session_id)
    assert session is not None and session.awaiting_since is not None

    ten_minutes_ago = replace(session, awaiting_since=session.awaiting_since - 600)
    assert stack.runtime.sessions.save(ten_minutes_ago, session)
    report = stack.runtime.periodic.escalation.call_local()
    assert report is not None and report.escalated == 1
    assert sorted(str(a["_ownerid_value"]) for a in _alerts(stack)) == users
    assert stack.runtime.periodic.escalation.call_local().escalated == 0
