"""The phone sync against the in-memory directory: full, incremental, deletes, related types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import structlog

from connector.domain.phone import lookup_key as normalize
from connector.domain.record_types import default_specs, standard_spec
from connector.domain.routing import RecordRef
from connector.services.phone_sync import PhoneSync
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.testing.phone_directory import FakePhoneDirectory

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def directory() -> FakePhoneDirectory:
    return FakePhoneDirectory(page_size=2)


@pytest.fixture
def index() -> PhoneIndex:
    return PhoneIndex(StateStore.from_url("sqlite://"))


def contact(cid: str, **cols: object) -> dict[str, object]:
    return {"contactid": cid, "fullname": f"Contact {cid}", "_ownerid_value": "u1", **cols}


def keys(index: PhoneIndex, key: str) -> set[str]:
    return {str(c.record) for c in index.lookup(key)}


def test_full_sync_indexes_every_format_with_the_country_chain(
    directory: FakePhoneDirectory, index: PhoneIndex
) -> None:
    directory.put("contact", contact("a", mobilephone="(415) 555-0101"), "contactid")
    directory.put("contact", contact("b", telephone1="+44 20 7946 0958"), "contactid")
    directory.put("contact", contact("c", telephone2="0044 20 7946 0959"), "contactid")
    uk_local = contact("d", mobilephone="020 7946 0960", address1_country="GB")
    directory.put("contact", uk_local, "contactid")
    directory.put(
        "account", {"accountid": "x", "name": "X", "telephone1": "415.555.0102"}, "accountid"
    )
    report = PhoneSync(directory, index, normalize).run(default_specs(), "US", full=True)
    assert keys(index, "14155550101") == {"contact:a"}
    assert keys(index, "442079460958") == {"contact:b"}
    assert keys(index, "442079460959") == {"contact:c"}
    assert keys(index, "442079460960") == {"contact:d"}
    assert keys(index, "14155550102") == {"account:x"}
    assert [t.table for t in report.tables] == ["contact", "account", "lead", "opportunity"]


def test_record_type_default_country_comes_before_the_senders(
    directory: FakePhoneDirectory, index: PhoneIndex
) -> None:
    directory.put("contact", contact("a", mobilephone="030 1234567"), "contactid")
    spec = standard_spec("contact", default_country="DE")
    PhoneSync(directory, index, normalize).run([spec], "US", full=True)
    assert keys(index, "49301234567") == {"contact:a"}


def test_invalid_number_is_skipped_with_a_logged_reason(
    directory: FakePhoneDirectory, index: PhoneIndex
) -> None:
    directory.put("contact", contact("a", mobilephone="call me maybe"), "contactid")
    directory.put("contact", contact("b", mobilephone="415 555 0103"), "contactid")
    with structlog.testing.capture_logs() as logs:
        report = PhoneSync(directory, index, normalize).run(default_specs(), "US", full=True)
    assert report.skipped == 1
    assert keys(index, "14155550103") == {"contact:b"}
    skipped = [e for e in logs if e["event"] == "phone_sync.invalid_number_skipped"]
    assert skipped == [
        {
            "event": "phone_sync.invalid_number_skipped",
            "log_level": "warning",
            "record": "contact:a",
            "column": "mobilephone",
            "reason": "not_a_number",
        }
    ]


def test_full_sync_drops_records_deleted_in_dataverse(
    directory: FakePhoneDirectory, index: PhoneIndex
) -> None:
    sync = PhoneSync(directory, index, normalize)
    directory.put("contact", contact("a", mobilephone="4155550101"), "contactid")
    directory.put("contact", contact("b", mobilephone="4155550102"), "contactid")
    sync.run(default_specs(), "US", full=True)
    directory.remove("contact", "a")
    report = sync.run(default_specs(), "US", full=True)
    assert keys(index, "14155550101") == set()
    assert report.tables[0].deleted == 1


def test_incremental_by_modifiedon_reads_only_changes_and_sees_deactivation(
    directory: FakePhoneDirectory, index: PhoneIndex
) -> None:
    sync = PhoneSync(directory, index, normalize)
    for i in range(5):
        stamp = (T0 + timedelta(minutes=10 * i)).isoformat()
        directory.put(
            "contact", contact(f"c{i}", mobilephone=f"415555010{i}", modifiedon=stamp), "contactid"
        )
    sync.run([standard_spec("contact")], "US", full=True)
    later = (T0 + timedelta(hours=1)).isoformat()
    directory.put(
        "contact",
        contact("c1", mobilephone="4155550199", statecode=1, modifiedon=later),
        "contactid",
    )
    before = directory.requests
    report = sync.run([standard_spec("contact")], "US")
    assert report.tables[0].mode == "modifiedon"
    assert report.tables[0].rows == 2  # the changed row, and c4 again inside the 60 s overlap
    assert directory.requests - before == 1
    assert keys(index, "14155550101") == set()
    [moved] = index.lookup("14155550199")
    assert moved.active is False


def test_change_tracking_applies_updates_and_tombstones(
    directory: FakePhoneDirectory, index: PhoneIndex
) -> None:
    spec = standard_spec("contact", change_tracking=True)
    sync = PhoneSync(directory, index, normalize)
    directory.put("contact", contact("a", mobilephone="4155550101"), "contactid")
    directory.put("contact", contact("b", mobilephone="4155550102"), "contactid")
    sync.run([spec], "US")  # no delta link yet: a full read that starts tracking
    directory.remove("contact", "a")
    directory.put("contact", contact("b", mobilephone="4155550177"), "contactid")
    report = sync.run([spec], "US")
    assert report.tables[0].mode == "delta"
    assert (report.tables[0].rows, report.tables[0].deleted) == (1, 1)
    assert keys(index, "14155550101") == set()
    assert keys(index, "14155550102") == set()
    assert keys(index, "14155550177") == {"contact:b"}


def test_opportunity_is_found_through_its_parent_contact_and_follows_renumbering(
    directory: FakePhoneDirectory, index: PhoneIndex
) -> None:
    sync = PhoneSync(directory, index, normalize)
    directory.put("contact", contact("a", mobilephone="4155550101"), "contactid")
    opp = {"opportunityid": "o1", "name": "Deal", "_parentcontactid_value": "a"}
    directory.put("opportunity", opp, "opportunityid")
    sync.run(default_specs(), "US", full=True)
    assert keys(index, "14155550101") == {"contact:a", "opportunity:o1"}
    via = next(c for c in index.lookup("14155550101") if c.record.table == "opportunity")
    assert via.via == RecordRef("contact", "a")
    assert via.matched_column == "contact.mobilephone"
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    directory.put("contact", contact("a", mobilephone="4155550155", modifiedon=later), "contactid")
    sync.run(default_specs(), "US")
    assert keys(index, "14155550101") == set()
    assert keys(index, "14155550155") == {"contact:a", "opportunity:o1"}


def test_progress_reports_rows_per_table(directory: FakePhoneDirectory, index: PhoneIndex) -> None:
    for i in range(5):
        directory.put("contact", contact(f"c{i}", mobilephone=f"415555010{i}"), "contactid")
    seen: list[tuple[str, int]] = []
    PhoneSync(directory, index, normalize).run(
        [standard_spec("contact")], "US", full=True, progress=lambda t, n: seen.append((t, n))
    )
    assert seen == [("contact", 2), ("contact", 4), ("contact", 5)]


def test_job_syncs_each_table_once_across_configurations(
    directory: FakePhoneDirectory, index: PhoneIndex
) -> None:
    from connector.services.phone_sync import PhoneSyncJob

    directory.put("contact", contact("a", mobilephone="030 1234567"), "contactid")
    job = PhoneSyncJob(
        PhoneSync(directory, index, normalize),
        lambda: [([standard_spec("contact")], "DE"), ([standard_spec("contact")], "US")],
    )
    report = job.run(full=True)
    assert [t.table for t in report.tables] == ["contact"]
    assert keys(index, "49301234567") == {"contact:a"}


def test_a_number_edited_into_junk_leaves_the_index(
    directory: FakePhoneDirectory, index: PhoneIndex
) -> None:
    sync = PhoneSync(directory, index, normalize)
    directory.put(
        "contact", contact("a", mobilephone="4155550101", modifiedon=T0.isoformat()), "contactid"
    )
    sync.run([standard_spec("contact")], "US", full=True)
    later = (T0 + timedelta(hours=1)).isoformat()
    directory.put("contact", contact("a", mobilephone="n/a", modifiedon=later), "contactid")
    report = sync.run([standard_spec("contact")], "US")
    assert report.skipped == 1
    assert keys(index, "14155550101") == set()
