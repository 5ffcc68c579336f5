"""Pure builders for lookup writes: ``@odata.bind``, polymorphic regarding, activity parties.

Dataverse writes a lookup through its single-valued navigation property:
``"<nav>@odata.bind": "/<entityset>(<id>)"``. Polymorphic lookups (customer, regarding, owner)
have one navigation property per target table, e.g. ``regardingobjectid_contact_task``, and an
activity's parties are a deep-inserted collection ``<activity>_activity_parties`` of
``{"partyid_<table>@odata.bind": ..., "participationtypemask": n}``. Navigation-property
names are case-sensitive; the installer reads the real ones from metadata, these helpers only
build the documented default shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from connector.dataverse.odata import KeyValue, bind, identifier
from connector.errors import InvalidInputError


class Participation(IntEnum):
    """``participationtypemask`` values of an activity party."""

    SENDER = 1
    TO_RECIPIENT = 2
    CC = 3
    BCC = 4
    REQUIRED_ATTENDEE = 5
    OPTIONAL_ATTENDEE = 6
    ORGANIZER = 7
    REGARDING = 8
    OWNER = 9
    RESOURCE = 10
    CUSTOMER = 11


@dataclass(frozen=True, slots=True)
class RowRef:
    """A row addressed by table logical name, entity-set name and key."""

    table: str
    entity_set: str
    key: KeyValue | Mapping[str, KeyValue]

    def bind(self) -> str:
        """``/entityset(key)`` for an ``@odata.bind`` value."""
        return bind(self.entity_set, self.key)


def lookup(navigation: str, target: RowRef | None) -> dict[str, Any]:
    """``{"<nav>@odata.bind": "/set(id)"}``; a ``None`` target clears the lookup."""
    return {f"{identifier(navigation)}@odata.bind": target.bind() if target else None}


def regarding_navigation(activity_table: str, target_table: str) -> str:
    """The regarding navigation property of ``activity_table`` for ``target_table`` rows."""
    return f"regardingobjectid_{identifier(target_table)}_{identifier(activity_table)}"


def regarding(activity_table: str, target: RowRef) -> dict[str, Any]:
    """The polymorphic regarding bind of an activity row."""
    return lookup(regarding_navigation(activity_table, target.table), target)


def activity_party(
    role: Participation, party: RowRef | None = None, *, address: str | None = None
) -> dict[str, Any]:
    """One activity party: a bound row, or an unresolved ``addressused`` (e.g. a number)."""
    if party is None and address is None:
        raise InvalidInputError("an activity party needs a row or an address")
    item: dict[str, Any] = {"participationtypemask": int(role)}
    if party is not None:
        item.update(lookup(f"partyid_{identifier(party.table)}", party))
    if address is not None:
        item["addressused"] = address
    return item


def activity_parties(
    activity_table: str, parties: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The deep-insert collection ``<activity>_activity_parties`` of an activity create."""
    return {f"{identifier(activity_table)}_activity_parties": parties}
