"""The template catalog and the record reader against the emulator over HTTP.

The catalog's cache is watched through a client that counts its queries and a clock the test
moves; the reader's requests are counted the same way (one GET per record, one more per
lookup whose other columns are read).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from connector.crm import tables
from connector.crm.templates import DataverseRecordReader, DataverseTemplates
from connector.dataverse.client import DataverseClient
from connector.dataverse.transport import Answer
from connector.domain.model import Template
from connector.errors import InvalidInputError
from connector.testing.emulator_client import emulator_web_api

EMULATOR_USER = "00000000-0000-0000-0000-00000000aa01"  # the emulator's application user


class CountingClient(DataverseClient):
    """The real client, remembering the collection queries and raw requests it made."""

    def __init__(self, url: str) -> None:
        super().__init__(emulator_web_api(url))
        self.queries: list[str] = []
        self.requests: list[str] = []

    def query(self, entity_set: str, **options: Any) -> Iterator[dict[str, Any]]:
        self.queries.append(entity_set)
        return super().query(entity_set, **options)

    def request(self, method: str, path: str, **options: Any) -> Answer:
        self.requests.append(path.split("(", 1)[0])
        return super().request(method, path, **options)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(installed_emulator_url: str) -> Iterator[CountingClient]:
    dv = CountingClient(installed_emulator_url)
    yield dv
    dv.api.close()


def _template(client: DataverseClient, title: str, *, published: bool = False) -> str:
    body = tables.template_to_row(
        Template(title, f"{title}: hi {{firstname}}", published=published)
    )
    return client.create(tables.TEMPLATE.entity_set, body)


# -- DataverseTemplates -----------------------------------------------------------------------


def test_catalog_reads_every_template_in_one_query_and_keeps_them_for_the_ttl(
    client: CountingClient,
) -> None:
    shown, draft = _template(client, "Welcome", published=True), _template(client, "Draft")
    clock = Clock()
    catalog = DataverseTemplates(client, ttl_seconds=60.0, clock=clock)
    assert [t.id for t in catalog.published()] == [shown]
    found = catalog.get(draft.upper())
    assert found is not None and (found.title, found.published) == ("Draft", False)
    assert client.queries == [tables.TEMPLATE.entity_set]

    client.update(tables.TEMPLATE.entity_set, draft, {"smsc_title": "Renamed"})
    clock.now += 59.0
    assert getattr(catalog.get(draft), "title", None) == "Draft"  # still cached
    clock.now += 1.0
    assert getattr(catalog.get(draft), "title", None) == "Renamed"
    assert len(client.queries) == 2


def test_catalog_reads_again_once_for_an_id_it_does_not_hold(client: CountingClient) -> None:
    catalog = DataverseTemplates(client, clock=Clock())
    assert catalog.get(str(uuid.uuid4())) is None
    assert len(client.queries) == 1  # the first read was the re-read
    created = _template(client, "Just made", published=True)
    found = catalog.get(created)
    assert found is not None and found.title == "Just made"
    assert len(client.queries) == 2
    assert [t.id for t in catalog.published()] == [created]  # the re-read refreshed the list
    assert catalog.get(str(uuid.uuid4())) is None
    assert len(client.queries) == 3  # one re-read per miss, not more


def test_catalog_loads_once_for_threads_arriving_together(client: CountingClient) -> None:
    template = _template(client, "Shared")
    catalog = DataverseTemplates(client, clock=Clock())
    start = threading.Barrier(6)
    found: list[Template | None] = []

    def worker() -> None:
        start.wait()
        found.append(catalog.get(template))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [t.id if t else None for t in found] == [template] * 6
    assert len(client.queries) == 1


# -- DataverseRecordReader --------------------------------------------------------------------


def _contact(client: DataverseClient, **extra: Any) -> tuple[str, str]:
    account = client.create("accounts", {"name": "Contoso", "accountnumber": "A-1"})
    contact = client.create(
        "contacts",
        {
            "firstname": "Ana",
            "lastname": "Lee",
            "parentcustomerid_account@odata.bind": f"/accounts({account})",
            **extra,
        },
    )
    return contact, account


def test_reads_plain_columns_choice_labels_lookup_names_and_owner_in_one_get(
    client: CountingClient,
) -> None:
    contact, _ = _contact(client)
    reader = DataverseRecordReader(client)
    fields = ["FirstName", "statecode", "parentcustomerid.name", "ownerid", "emailaddress1"]
    record = reader.read("contact", contact, fields)
    assert record is not None
    assert (record.table, record.id, record.name) == ("contact", contact, "Ana Lee")
    assert (record.owner_id, record.owner_is_team) == (EMULATOR_USER, False)
    assert dict(record.values) == {
        "firstname": "Ana",
        "statecode": "Active",  # the choice's label, not 0
        "parentcustomerid.name": "Contoso",  # the lookup's display name: no second request
        "ownerid": "Emulator Application User",
        "emailaddress1": None,
    }
    assert client.requests == ["contacts"]


def test_reads_other_columns_of_a_lookup_target_in_one_more_get(client: CountingClient) -> None:
    contact, _ = _contact(client)
    reader = DataverseRecordReader(client)
    fields = ["parentcustomerid.accountnumber", "parentcustomerid.address1_city", "firstname"]
    record = reader.read("contact", contact, fields)
    assert record is not None
    assert dict(record.values) == {
        "parentcustomerid.accountnumber": "A-1",
        "parentcustomerid.address1_city": None,
        "firstname": "Ana",
    }
    assert client.requests == ["contacts", "accounts"]


def test_lookup_name_is_the_primary_name_of_whatever_table_it_points_to(
    client: CountingClient,
) -> None:
    parent = client.create("contacts", {"firstname": "Pat", "lastname": "Parent"})
    child = client.create(
        "contacts",
        {"lastname": "Child", "parentcustomerid_contact@odata.bind": f"/contacts({parent})"},
    )
    reader = DataverseRecordReader(client)
    record = reader.read("contact", child, ["parentcustomerid.name", "parentcustomerid.fullname"])
    assert record is not None
    assert dict(record.values) == {
        "parentcustomerid.name": "Pat Parent",
        "parentcustomerid.fullname": "Pat Parent",
    }
    assert client.requests == ["contacts"]


def test_an_empty_lookup_reads_none_without_another_request(client: CountingClient) -> None:
    alone = client.create("contacts", {"firstname": "Solo"})
    record = DataverseRecordReader(client).read(
        "contact", alone, ["parentcustomerid.name", "parentcustomerid.accountnumber"]
    )
    assert record is not None
    assert dict(record.values) == {
        "parentcustomerid.name": None,
        "parentcustomerid.accountnumber": None,
    }
    assert client.requests == ["contacts"]


def test_owner_team_is_reported(client: CountingClient) -> None:
    team = client.create("teams", {"name": "Sales"})
    contact, _ = _contact(client, **{"ownerid@odata.bind": f"/teams({team})"})
    record = DataverseRecordReader(client).read("contact", contact, ["ownerid"])
    assert record is not None
    assert (record.owner_id, record.owner_is_team) == (team, True)
    assert record.values == {"ownerid": "Sales"}


def test_missing_record_is_none(client: CountingClient) -> None:
    reader = DataverseRecordReader(client)
    assert reader.read("contact", str(uuid.uuid4()), ["firstname"]) is None


def test_unknown_column_names_table_and_field(client: CountingClient) -> None:
    contact, _ = _contact(client)
    reader = DataverseRecordReader(client)
    with pytest.raises(InvalidInputError) as raised:
        reader.read("contact", contact, ["firstname", "favouritecolour"])
    assert raised.value.code == "unknown_column"
    assert raised.value.details == {"table": "contact", "field": "favouritecolour"}
    with pytest.raises(InvalidInputError) as through:
        reader.read("contact", contact, ["parentcustomerid.favouritecolour"])
    assert through.value.details == {
        "table": "account",
        "field": "parentcustomerid.favouritecolour",
    }
    with pytest.raises(InvalidInputError) as no_lookup:
        reader.read("contact", contact, ["nolookup.name"])
    assert no_lookup.value.details == {"table": "contact", "field": "nolookup.name"}


def test_table_not_known_by_name_is_read_through_its_metadata(client: CountingClient) -> None:
    task = client.create("tasks", {"subject": "Call back"})
    reader = DataverseRecordReader(client)
    for _ in range(2):
        record = reader.read("task", task, ["subject"])
        assert record is not None
        assert (record.id, record.name, dict(record.values)) == (
            task,
            "Call back",
            {"subject": "Call back"},
        )
    assert client.requests == ["EntityDefinitions", "tasks", "tasks"]  # metadata read once
