"""The periodic phone sync: runs the job, and skips while another process holds the lock."""

from __future__ import annotations

from datetime import datetime

from huey import MemoryHuey

from connector.domain.phone import lookup_key
from connector.domain.record_types import standard_spec
from connector.services.phone_sync import PhoneSync, PhoneSyncJob
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.testing.phone_directory import FakePhoneDirectory
from connector.worker.phone_sync_tasks import (
    FULL_TASK,
    INCREMENTAL_TASK,
    LOCK,
    register_phone_sync,
    run_locked,
)


def _setup() -> tuple[MemoryHuey, PhoneSyncJob, PhoneIndex]:
    directory = FakePhoneDirectory()
    directory.put("contact", {"contactid": "a", "mobilephone": "415 555 0101"}, "contactid")
    index = PhoneIndex(StateStore.from_url("sqlite://"))
    job = PhoneSyncJob(
        PhoneSync(directory, index, lookup_key), lambda: [([standard_spec("contact")], "US")]
    )
    return MemoryHuey(immediate=True), job, index


def test_periodic_tasks_are_scheduled_and_sync_the_index() -> None:
    huey, job, index = _setup()
    tasks = register_phone_sync(huey, job)
    names = {task.name for task in huey.read_periodic(datetime(2025, 1, 1, 3, 0))}
    assert {INCREMENTAL_TASK, FULL_TASK} <= names
    tasks.incremental()
    assert [c.record.id for c in index.lookup("14155550101")] == ["a"]


def test_a_run_is_skipped_while_another_process_holds_the_lock() -> None:
    huey, job, index = _setup()
    with huey.lock_task(LOCK):
        assert run_locked(huey, job, full=True) is None
    assert index.lookup("14155550101") == []
    report = run_locked(huey, job, full=True)
    assert report is not None and report.tables[0].mode == "full"
