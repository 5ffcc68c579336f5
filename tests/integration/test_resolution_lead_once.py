"""Three messages from an unknown number resolved at once, in threads, create exactly one lead.

Runs on a SQLite file and on a real PostgreSQL server: the lead claim is a primary-key insert
that only one of the racing workers wins; the others get a transient error and, retried like
the worker retries them, resolve to the same lead.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from connector.domain.phone import lookup_key
from connector.domain.record_types import default_specs
from connector.domain.routing import RecordRef, SenderContext
from connector.errors import ResolutionPendingError
from connector.services.phone_sync import PhoneSync
from connector.services.resolution import RecordResolutionService
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
from connector.testing.phone_directory import FakePhoneDirectory

PHONE = "+447946095877"
SENDER = SenderContext(configuration_id="cfg", owner_id="u1", default_country="GB")


class SlowCreateDirectory(FakePhoneDirectory):
    """Holds the lead creation until both other workers have seen the claim."""

    def __init__(self) -> None:
        super().__init__()
        self.pending_seen = threading.Semaphore(0)

    def create_lead(self, phone_e164: str, owner_id: str | None) -> str:
        for _ in range(2):
            assert self.pending_seen.acquire(timeout=30), "the other workers never raced"
        return super().create_lead(phone_e164, owner_id)


def test_three_simultaneous_messages_create_exactly_one_lead(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    directory = SlowCreateDirectory()
    index = PhoneIndex(store)
    PhoneSync(directory, index, lookup_key).run(default_specs("GB"), "GB", full=True)
    resolver = RecordResolutionService(
        index,
        ResolutionLedger(store),
        directory,
        lookup_key=lookup_key,
        variants=lambda e164: [e164, e164[1:]],
        normalize=lookup_key,
    )
    start = threading.Barrier(3)

    def worker() -> tuple[RecordRef | None, int]:
        start.wait(timeout=30)
        retries = 0
        while True:
            try:
                return resolver.resolve(PHONE, SENDER).record, retries
            except ResolutionPendingError:
                if retries == 0:
                    directory.pending_seen.release()
                retries += 1
                threading.Event().wait(0.01)  # the worker's retry backoff

    with ThreadPoolExecutor(3) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(worker) for _ in range(3)]]
    records = {record for record, _ in results}
    assert len(directory.created_leads) == 1
    assert records == {RecordRef("lead", directory.created_leads[0]["leadid"])}
    assert sorted(retries > 0 for _, retries in results) == [False, True, True]
    index.close()
    store.close()
