"""The journal drain: a batch in one write, poison rows parked and logged, outages retried."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from connector.domain.conversation import InboundWrite, MediaFile
from connector.domain.model import Configuration, Provider
from connector.domain.provider_messages import InboundMedia
from connector.domain.routing import RecordRef
from connector.errors import ProviderError, StateStoreError
from connector.providers.twilio.webhook import SignatureTokens, TwilioWebhooks
from connector.providers.webhooks import ProviderRegistry
from connector.services.inbound import InboundService
from connector.services.inbound_batch import DrainResult, JournalDrain
from connector.state.caches import ConfigurationCache
from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.state.session_mirror import SessionCache
from connector.testing.conversations import (
    FakeConfigurationDirectory,
    FakeConversationWriter,
    FakeErrorLog,
    TableResolver,
)
from connector.testing.signing import inbound_fields

SENDER = "+14155550100"
ALICE = "+14155550123"


Parts = tuple[Journal, FakeConversationWriter, FakeErrorLog, JournalDrain]


@pytest.fixture
def parts() -> Parts:
    return build_parts(Journal(StateStore.from_url("sqlite://"), base_delay=0.0))


def build_parts(journal: Journal, **drain_options: Any) -> Parts:
    """A drain over ``journal`` with one configuration and Alice known as a contact."""
    store = journal.store
    config = Configuration("Main", Provider.SIMULATOR, SENDER, id="cfg-1", owner_id="u-1")
    writer = FakeConversationWriter()
    service = InboundService(
        ConfigurationCache(FakeConfigurationDirectory(configurations=[config])),
        SessionCache(store),
        TableResolver(records={ALICE: RecordRef("contact", "c-1")}),
        writer,
    )
    errors = FakeErrorLog()
    providers = ProviderRegistry([TwilioWebhooks(SignatureTokens([]))])
    drain = JournalDrain(journal, service, providers, error_log=errors, **drain_options)
    return journal, writer, errors, drain


def journal_message(journal: Journal, body: str, to: str = SENDER) -> str:
    fields = dict(inbound_fields(ALICE, to, body))
    journal.append("twilio", fields["MessageSid"], fields)
    return fields["MessageSid"]


def test_a_batch_is_written_and_every_row_marked_done(parts: Parts) -> None:
    journal, writer, _, drain = parts
    sids = [journal_message(journal, f"m{n}") for n in range(5)]
    result = drain.drain()
    assert (result.done, result.failed) == (5, 0)
    assert set(writer.messages) == set(sids)
    assert journal.counts().done == 5


def test_poison_row_is_parked_logged_and_replayable_while_the_rest_is_written(parts: Parts) -> None:
    journal, writer, errors, drain = parts
    good = journal_message(journal, "fine")
    bad = journal_message(journal, "to nobody", to="+14155550777")
    result = drain.drain()
    assert (result.done, result.failed) == (1, 1)
    assert set(writer.messages) == {good}
    ((key, row),) = errors.rows.items()
    assert row["code"] == "configuration_error"
    assert bad in str(row["message"]) and "connector journal replay" in str(row["details"])
    assert journal.counts().error == 1
    assert journal.replay() == 1
    assert drain.drain().failed == 1  # still poison: parked again, same log row
    assert list(errors.rows) == [key]


def test_dataverse_outage_keeps_rows_pending_until_it_is_back(parts: Parts) -> None:
    journal, writer, errors, drain = parts
    sids = [journal_message(journal, f"m{n}") for n in range(3)]
    writer.fail_next = 3
    first = drain.drain()
    assert (first.done, first.failed) == (0, 3)
    assert journal.counts().pending == 3 and errors.rows == {}
    second = drain.drain()
    assert second.done == 3
    assert set(writer.messages) == set(sids)


def test_a_row_from_a_provider_this_process_does_not_know_is_parked_not_guessed(
    parts: Parts,
) -> None:
    journal, writer, errors, drain = parts
    fields = dict(inbound_fields(ALICE, SENDER, "from elsewhere"))
    journal.append("acs", fields["MessageSid"], fields)
    good = journal_message(journal, "from twilio")
    result = drain.drain()
    assert (result.done, result.failed) == (1, 1)
    assert set(writer.messages) == {good}
    assert journal.counts().error == 1
    (parked,) = journal.errors()
    assert "unknown_provider" in parked["last_error"]
    assert any(row["code"] == "unknown_provider" for row in errors.rows.values())


def test_a_parked_rows_log_line_carries_the_request_id_it_was_journaled_under(
    parts: Parts,
) -> None:
    import io
    import json

    from connector.log_config import configure_logging

    journal, _, _, drain = parts
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    fields = dict(inbound_fields(ALICE, "+14155550999", "to nobody"))  # no configuration
    journal.append("twilio", fields["MessageSid"], fields, request_id="req-from-webhook")
    try:
        drain.drain()
    finally:
        configure_logging("WARNING", "console")
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    failed = [line for line in lines if line.get("event") == "journal.failed"]
    assert failed, lines
    assert failed[0]["request_id"] == "req-from-webhook"
    assert failed[0]["provider_message_id"] == fields["MessageSid"]


class DownMediaHost:
    """A media host that always answers 500 (a MediaFetcher whose downloads never succeed)."""

    def __init__(self) -> None:
        self.calls = 0

    def fetch(self, media: InboundMedia, account_id: str) -> MediaFile:
        self.calls += 1
        raise ProviderError("media download answered 500", http_status=500, transient=True)


def test_text_is_written_with_a_note_once_an_attachment_failed_three_times() -> None:
    store = StateStore.from_url("sqlite://")
    journal = Journal(store, base_delay=0.0)
    config = Configuration("Main", Provider.SIMULATOR, SENDER, id="cfg-1", owner_id="u-1")
    writer, errors, host = FakeConversationWriter(), FakeErrorLog(), DownMediaHost()
    service = InboundService(
        ConfigurationCache(FakeConfigurationDirectory(configurations=[config])),
        SessionCache(store),
        TableResolver(records={ALICE: RecordRef("contact", "c-1")}),
        writer,
        media=host,
        error_log=errors,
    )
    providers = ProviderRegistry([TwilioWebhooks(SignatureTokens([]))])
    drain = JournalDrain(journal, service, providers, error_log=errors)
    media = [("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME9", "image/png")]
    fields = dict(inbound_fields(ALICE, SENDER, "photo 📷", media=media))
    journal.append("twilio", fields["MessageSid"], fields)
    assert drain.drain().failed == 1  # attempts 1 and 2: transient, the row waits
    assert drain.drain().failed == 1
    assert writer.messages == {} and journal.counts().pending == 1
    assert drain.drain().done == 1  # attempt 3: the text goes in without the picture
    write = writer.messages[fields["MessageSid"]]
    assert write.message.body == "photo 📷"
    (note,) = write.attachments
    assert note.filename == "ME9-not-fetched.txt" and note.content_type == "text/plain"
    assert b"could not be fetched" in note.data and b"answered 500" in note.data
    (row,) = errors.rows.values()
    assert row["code"] == "media_not_fetched" and "answered 500" in str(row["message"])
    assert host.calls == 3


class Clock:
    """A clock that moves only when the drain sleeps (no real waiting in these tests)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def lingering(parts: Parts, clock: Clock, batch_size: int = 50) -> JournalDrain:
    journal, _, _, plain = parts
    return JournalDrain(
        journal,
        plain.service,
        plain.providers,
        batch_size=batch_size,
        error_log=plain.error_log,
        linger_seconds=0.25,
        depth=lambda limit, urgent: journal.due_depth(limit, urgent, now=clock.now),
        sleep=clock.sleep,
        clock=clock,
    )


def count_writes(writer: FakeConversationWriter) -> list[int]:
    """The sizes of the writer's ``write_inbound_many`` calls, as they happen."""
    calls: list[int] = []
    write_many = writer.write_inbound_many

    def counted(writes: Sequence[InboundWrite]) -> list[Exception | None]:
        calls.append(len(writes))
        return write_many(writes)

    writer.write_inbound_many = counted  # type: ignore[method-assign]
    return calls


def test_a_shallow_journal_lingers_then_writes_everything_in_one_batch(parts: Parts) -> None:
    journal, writer, _, _ = parts
    sids = [journal_message(journal, f"m{n}") for n in range(3)]
    _, oldest, _ = journal.due_depth(50)
    assert oldest is not None
    clock = Clock(oldest)
    calls = count_writes(writer)
    drain = lingering(parts, clock)
    journal_message(journal, "arrives while the drain lingers")
    result = drain.drain()
    assert (result.done, result.failed) == (4, 0)
    assert set(sids) < set(writer.messages)
    assert calls == [4]  # one write for all of them
    assert clock.now >= oldest + 0.25 and sum(clock.sleeps) <= 0.25 + 1e-9


def test_a_full_batch_or_an_empty_journal_does_not_linger(parts: Parts) -> None:
    journal, _, _, _ = parts
    clock = Clock(0.0)
    assert lingering(parts, clock, batch_size=2).drain().done == 0
    for n in range(2):
        journal_message(journal, f"m{n}")
    clock.now = time.time()  # both due, the window not over
    assert lingering(parts, clock, batch_size=2).drain().done == 2
    assert clock.sleeps == []


def test_the_window_closing_between_two_clock_reads_never_sleeps_a_negative_time(
    parts: Parts,
) -> None:
    """Found in the inbound benchmark: the window was read twice, once to decide to wait and
    once for how long; when it closed in between, time.sleep got a negative length and the
    drain task died with "sleep length must be non-negative"."""
    journal, _, _, _ = parts
    journal_message(journal, "m")
    _, oldest, _ = journal.due_depth(50)
    assert oldest is not None

    class Ticking(Clock):
        """Each reading is 0.2 s later than the one before (a slow, busy machine)."""

        def __call__(self) -> float:
            self.now += 0.2
            return self.now

    clock = Ticking(oldest)

    def real_sleep(seconds: float) -> None:
        time.sleep(seconds)  # raises ValueError on a negative length, as in production
        clock.sleep(seconds)

    drain = lingering(parts, clock)
    drain.sleep = real_sleep
    assert drain.drain().done == 1
    assert all(0 < seconds <= 0.25 for seconds in clock.sleeps)


def test_a_row_older_than_the_window_is_claimed_at_once(parts: Parts) -> None:
    journal, _, _, _ = parts
    journal_message(journal, "late")
    _, oldest, _ = journal.due_depth(50)
    assert oldest is not None
    clock = Clock(oldest + 1.0)
    assert lingering(parts, clock).drain().done == 1
    assert clock.sleeps == []


def test_lingering_claims_nothing_so_a_killed_worker_leaves_rows_pending(parts: Parts) -> None:
    journal, _, _, _ = parts
    journal_message(journal, "m")
    _, oldest, _ = journal.due_depth(50)
    assert oldest is not None

    class Killed(BaseException):
        """Stands for the process dying in the middle of the linger."""

    def die(_seconds: float) -> None:
        raise Killed

    drain = lingering(parts, Clock(oldest))
    drain.sleep = die
    with pytest.raises(Killed):
        drain.drain()
    assert journal.counts().pending == 1
    assert len(journal.claim(50, lease_seconds=60)) == 1  # not leased: claimable at once


def test_a_status_callback_is_applied_at_once_while_messages_linger(parts: Parts) -> None:
    journal, writer, _, _ = parts
    sid = journal_message(journal, "lingers")
    _, oldest, _ = journal.due_depth(50)
    assert oldest is not None
    status = {"MessageStatus": "delivered"}
    journal.append("twilio-status", "SM-out:delivered", status, now=oldest)
    clock = Clock(oldest)
    applied: list[tuple[float, int, list[str]]] = []

    def status_news(events: Sequence[tuple[Mapping[str, Any], float]]) -> list[Exception | None]:
        applied.append(
            (clock.now, len(writer.messages), [str(p["MessageStatus"]) for p, _ in events])
        )
        return [None] * len(events)

    drain = lingering(parts, clock)
    drain.status_news = status_news
    drain.status_journals = frozenset({"twilio-status"})
    result = drain.drain()
    assert (result.done, result.failed) == (2, 0)
    assert applied == [(oldest, 0, ["delivered"])]  # before any wait, before the message
    assert set(writer.messages) == {sid}
    assert clock.now >= oldest + 0.25  # the message still waited for its batch


def test_only_urgent_rows_due_are_claimed_without_waiting(parts: Parts) -> None:
    journal, _, _, _ = parts
    journal.append("twilio-status", "SM-out:sent", {"MessageStatus": "sent"})
    _, oldest, urgent = journal.due_depth(50, frozenset({"twilio-status"}))
    assert urgent == 1 and oldest is not None
    clock = Clock(oldest)
    drain = lingering(parts, clock)
    drain.status_news = lambda events: [None] * len(events)
    drain.status_journals = frozenset({"twilio-status"})
    assert drain.drain().done == 1
    assert clock.sleeps == []


class FlakyJournal(Journal):
    """A journal whose store fails to record the next ``outages`` settlements."""

    outages = 0

    def mark_done_many(self, entries: Sequence[Any], *, now: float | None = None) -> int:
        if self.outages:
            self.outages -= 1
            raise StateStoreError("cannot update the journal: OperationalError")
        return super().mark_done_many(entries, now=now)


def test_a_batch_cut_short_by_the_state_store_is_given_back_when_it_answers_again() -> None:
    flaky = FlakyJournal(StateStore.from_url("sqlite://"), base_delay=0.0)
    journal, writer, _, drain = build_parts(flaky, lease_seconds=600)
    sids = [journal_message(journal, f"m{n}") for n in range(3)]
    flaky.outages = 1
    with pytest.raises(StateStoreError):
        drain.drain()  # written to Dataverse, but "done" could not be recorded
    assert journal.counts().done == 0
    # Without the give-back the rows would wait for their 600 s lease; the next drain settles
    # them as a failed attempt (due at once here) and writes them again, idempotently.
    result = drain.drain()
    assert (result.done, result.failed) == (3, 0)
    assert journal.counts().done == 3
    assert set(writer.messages) == set(sids)


def test_one_drain_lingers_at_a_time_and_takes_the_rows_of_a_drain_that_found_it(
    parts: Parts,
) -> None:
    """Two worker threads each running a drain used to linger side by side, polling the depth
    twice as often and splitting the batch. The second returns at once, writing nothing and
    asking for no follow-up; the lingering one writes both threads' rows in one batch."""
    journal, writer, _, _ = parts
    first = journal_message(journal, "first")
    _, oldest, _ = journal.due_depth(50)
    assert oldest is not None
    clock = Clock(oldest)
    in_window, go_on = threading.Event(), threading.Event()
    calls = count_writes(writer)

    def held_sleep(seconds: float) -> None:
        in_window.set()
        assert go_on.wait(10)
        clock.sleep(seconds)

    drain = lingering(parts, clock)
    drain.sleep = held_sleep
    results: list[DrainResult] = []
    lingerer = threading.Thread(target=lambda: results.append(drain.drain()))
    lingerer.start()
    assert in_window.wait(10)
    second = journal_message(journal, "second, whose drain finds the first lingering")
    skipped = drain.drain()
    assert (skipped.done, skipped.failed, skipped.next_due) == (0, 0, None)
    assert journal.counts().pending == 2  # nothing claimed by the drain that returned
    go_on.set()
    lingerer.join(10)
    assert results[0].done == 2 and {first, second} <= set(writer.messages)
    assert calls == [2]  # one write for both
