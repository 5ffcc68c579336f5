"""The consent ledger in Dataverse: the current row per (phone, configuration, purpose) and
one immutable history row per change.

Implements :class:`~connector.ports.ConsentLedgerWriter`. ``write`` sends ONE ``$batch`` with
ONE change set per change: the current consent row upserted by its alternate key, e.g.
``<consents>(<phone>='14155550123',_<configuration lookup>_value=<guid>,<purpose>=105710001)``
(a lookup in a key is named by its lookup property, as Dataverse documents; the phone has no
``+``), then the history row upserted by the change's own id (derived from its cause) and
bound to the current row through the same key URL. Both upserts carry the whole state, so
writing the same changes again rewrites the same two rows and adds no history. Change sets run
in the order given, so the last change of a (phone, configuration, purpose) is the current
row. A retry of an OLDER change after a newer one was written would make it current again:
callers retry failed changes before writing later ones of the same phone.

``changed_since`` reads the current rows back (admins edit them, imports load them), so the
connector can refresh its local consent cache. Table and column names and row shapes come
from :mod:`connector.crm.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from connector.crm import tables
from connector.crm.conversations import run_change_sets
from connector.dataverse import odata
from connector.dataverse.batch import BatchOperation, ChangeSet
from connector.dataverse.client import DataverseClient
from connector.domain.consent import ConsentChange
from connector.errors import ConfigurationError, InvalidInputError
from connector.log_config import get_logger

log = get_logger(__name__)


def consent_path(change: ConsentChange) -> str:
    """The relative URL of the current consent row of ``change``'s (phone, configuration,
    purpose), by its alternate key."""
    key = tables.consent_key(change.phone, change.configuration_id, change.purpose)
    return odata.entity_path(tables.CONSENT.entity_set, key)


def consent_change_set(change: ConsentChange) -> ChangeSet:
    """The current row's upsert, then the history row's, applied together or not at all."""
    current = consent_path(change)
    history = odata.entity_path(tables.CONSENT_CHANGE.entity_set, odata.guid(change.id))
    return ChangeSet(
        [
            BatchOperation("PATCH", current, tables.consent_to_row(change)),
            BatchOperation("PATCH", history, tables.consent_change_to_row(change, "/" + current)),
        ]
    )


class DataverseConsentLedger:
    """Consent rows and their history through the Web API client."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def write(self, changes: Sequence[ConsentChange]) -> list[Exception | None]:
        """Write ``changes`` (in the order they happened) in ONE ``$batch``, a change set
        each, continuing past a failed one; the error of each (None: written).

        A change that cannot be addressed (its phone is not E.164, its configuration id or
        change id not a GUID) fails alone with :class:`~connector.errors.InvalidInputError`
        and is not sent; a failure of the whole request (unreachable, throttled) is every
        sent change's, and stays transient.
        """
        errors: list[Exception | None] = [None] * len(changes)
        sets: list[ChangeSet] = []
        positions: list[int] = []
        for position, change in enumerate(changes):
            try:
                sets.append(consent_change_set(change))
            except InvalidInputError as exc:
                errors[position] = exc
                continue
            positions.append(position)
        if sets:
            for position, error in zip(positions, run_change_sets(self._client, sets), strict=True):
                errors[position] = error
        return errors

    def changed_since(self, since: datetime | None) -> list[ConsentChange]:
        """The current consent rows modified at or after ``since`` (None: all), oldest edit
        first, read page by page. A row without a configuration or status, or with an option
        value the mapping does not know, is skipped and logged."""
        found: list[ConsentChange] = []
        match = None if since is None else odata.ge(tables.CONSENT_MODIFIED, since)
        rows = self._client.query(
            tables.CONSENT.entity_set,
            select=tables.CONSENT_COLUMNS,
            filter=match,
            orderby=[tables.CONSENT_MODIFIED, tables.CONSENT.id_column],
        )
        for row in rows:
            try:
                found.append(tables.consent_from_row(row))
            except ConfigurationError as exc:
                log.warning(
                    "consent.row_skipped",
                    row=row.get(tables.CONSENT.id_column),
                    reason=exc.message,
                    details=exc.details,
                )
        return found
