"""Independent evidence: Microsoft's own Python SDK, unmodified, works against the emulator.

``PowerPlatform-Dataverse-Client`` is a test-only dependency; the test is skipped when it is
not installed. The SDK insists on HTTPS, so the emulator serves TLS on loopback with a
throwaway certificate the SDK's ``requests`` session trusts through ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.tls import make_certificate, running_tls

dataverse = pytest.importorskip("PowerPlatform.Dataverse")
credentials = pytest.importorskip("azure.core.credentials")


class StaticCredential(credentials.TokenCredential):  # type: ignore[misc,name-defined]
    """A TokenCredential handing out a fixed bearer token (the emulator accepts any)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return credentials.AccessToken("emulator-token", int(time.time()) + 3600)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    certfile, keyfile = make_certificate(tmp_path_factory.mktemp("tls"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REQUESTS_CA_BUNDLE", str(certfile))
        with (
            running_tls(create_emulator_app(), certfile, keyfile) as url,
            dataverse.DataverseClient(url, StaticCredential()) as sdk_client,
        ):
            yield sdk_client


def test_sdk_creates_reads_updates_and_deletes_a_record(client: Any) -> None:
    record_id = client.records.create(
        "contact", {"firstname": "Ada", "lastname": "Lovelace", "mobilephone": "15551234567"}
    )
    record = client.records.retrieve("contact", record_id, select=["fullname", "mobilephone"])
    assert record is not None
    assert record["fullname"] == "Ada Lovelace"
    client.records.update("contact", record_id, {"jobtitle": "Analyst"})
    assert client.records.retrieve("contact", record_id)["jobtitle"] == "Analyst"
    client.records.delete("contact", record_id)
    assert client.records.retrieve("contact", record_id) is None


def test_sdk_creates_many_and_queries_with_paging(client: Any) -> None:
    ids = client.records.create(
        "account", [{"name": f"SDK {n:02d}", "telephone1": "1555"} for n in range(12)]
    )
    assert len(ids) == 12
    result = client.records.list(
        "account",
        filter="startswith(name,'sdk ')",
        select=["name"],
        orderby=["name desc"],
        page_size=5,
    )
    names = [row["name"] for row in result]
    assert names == [f"SDK {n:02d}" for n in reversed(range(12))]


def test_sdk_creates_a_table_with_columns_and_an_alternate_key_then_upserts(client: Any) -> None:
    info = client.tables.create("new_Gadget", {"new_Code": "string", "new_Count": "int"})
    assert info["entity_set_name"] == "new_gadgets"
    client.tables.create_alternate_key("new_Gadget", "new_code_key", ["new_code"])
    item = dataverse.models.upsert.UpsertItem(
        alternate_key={"new_code": "G-1"}, record={"new_name": "First", "new_count": 1}
    )
    client.records.upsert("new_gadget", [item])
    client.records.upsert(
        "new_gadget",
        [
            dataverse.models.upsert.UpsertItem(
                alternate_key={"new_code": "G-1"}, record={"new_count": 2}
            )
        ],
    )
    rows = list(
        client.records.list(
            "new_gadget", filter="new_code eq 'G-1'", select=["new_name", "new_count"]
        )
    )
    assert len(rows) == 1
    assert rows[0]["new_name"] == "First" and rows[0]["new_count"] == 2


def test_sdk_batch_with_changeset(client: Any) -> None:
    batch = client.batch.new()
    with batch.changeset() as changeset:
        changeset.records.create("contact", {"lastname": "Batch One"})
        changeset.records.create("contact", {"lastname": "Batch Two"})
    result = batch.execute()
    assert len(result.entity_ids) == 2
    assert not result.failed
    for record_id in result.entity_ids:
        assert client.records.retrieve("contact", record_id)["lastname"].startswith("Batch")
