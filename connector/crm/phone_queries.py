"""The Web API requests the phone index and the live fallback make (pure builders, no I/O).

* a page read of one record type (``$select`` of its id, name, owner, state, modified-on,
  phone / parent-lookup and country columns), optionally only rows modified after a time;
* the live lookup: one GET per record type whose ``$filter`` ORs every phone column against
  every written form of the number, all sent as one ``$batch``;
* the lead created for an unknown number.

Every value goes through :mod:`connector.dataverse.odata` (escaped literals, checked column
names), so nothing typed into a phone column or a webhook can change a filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connector.dataverse.odata import eq, ge, guid, or_, query_options, query_string
from connector.domain.phone_records import RecordTypeSpec

LIVE_TOP = 50
MAX_VARIANTS = 12
OWNER_ANNOTATIONS = 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'


def records_url(spec: RecordTypeSpec, *, modified_since: datetime | None = None) -> str:
    """``contacts?$select=...[&$filter=modifiedon ge ...]`` (paged by ``odata.maxpagesize``)."""
    options = query_options(
        select=spec.select(),
        filter=ge("modifiedon", modified_since) if modified_since is not None else None,
    )
    return f"{spec.entity_set}?{query_string(options)}"


def changes_url(spec: RecordTypeSpec) -> str:
    """The first change-tracking read (``$select`` only: no filter, order or top allowed)."""
    return f"{spec.entity_set}?{query_string(query_options(select=spec.select()))}"


def live_lookup_url(spec: RecordTypeSpec, variants: Sequence[str]) -> str:
    """One record type's rows whose phone columns equal one of ``variants`` (exact match)."""
    forms = list(dict.fromkeys(v for v in variants if v))[:MAX_VARIANTS]
    flt = or_(*(eq(column, form) for column in spec.phone_columns for form in forms))
    options = query_options(select=spec.select(), filter=flt, top=LIVE_TOP)
    return f"{spec.entity_set}?{query_string(options)}"


def lead_body(phone_e164: str, owner_id: str | None) -> dict[str, Any]:
    """The lead created for a number no record carries."""
    body: dict[str, Any] = {
        "subject": f"Text message from {phone_e164}",
        "lastname": phone_e164,
        "mobilephone": phone_e164,
    }
    if owner_id:
        body["ownerid@odata.bind"] = f"/systemusers({guid(owner_id)})"
    return body


def team_members_url(team_id: str) -> str:
    """The users of a team (``teammembership_association``)."""
    return f"teams({guid(team_id)})/teammembership_association?$select=systemuserid"
