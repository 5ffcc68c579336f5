"""CSV export: the product's columns, formula text defused, unicode kept exactly."""

from __future__ import annotations

import csv
import io

import pytest

from connector.crm.message_export import export_row
from connector.ports import ExportRow
from connector.services.export import COLUMNS, defuse, write_csv


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+14155550123", "+14155550123"),
        ("+1415555012345678", "'+1415555012345678"),
        ("+1+1", "'+1+1"),
        ("+44 20 7946 0958", "'+44 20 7946 0958"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("hello = world", "hello = world"),
        ("émoji 👋", "émoji 👋"),
        ("", ""),
    ],
)
def test_formula_starting_cells_get_a_leading_quote(cell: str, expected: str) -> None:
    assert defuse(cell) == expected


@pytest.mark.parametrize(
    "prefix",
    ["\n", " ", "  \n ", "\u00a0", "\u200b", "\ufeff", "\x00", "\u3000", "\u2060", "\x0b", ""],
)
@pytest.mark.parametrize(
    "formula",
    ["=1+1", "+1+1", "-2+3", "@SUM(A1)", "\uff1d1+1", "\uff0b1", "\uff0d2", "\uff0fx", "\uff20A1"],
)
def test_formula_after_what_spreadsheets_strip_gets_a_leading_quote(
    prefix: str, formula: str
) -> None:
    # spreadsheets drop leading blanks, zero-width and control characters and read full-width
    # operators as ASCII ones: the cell is checked as the spreadsheet will see it
    assert defuse(prefix + formula) == "'" + prefix + formula


@pytest.mark.parametrize("cell", [" hello", "\u00a0caf\u00e9", "\u200b\U0001f44b", "a\uff1d1"])
def test_text_after_stripped_characters_is_kept_exactly(cell: str) -> None:
    assert defuse(cell) == cell


def test_csv_has_the_product_columns_and_one_line_per_message() -> None:
    row = ExportRow(
        "m-1", "s-1", "2026-01-02", "03:04:05", "Alice Nguyen", "+14155550123", "+14155550100",
        "Received", '=HYPERLINK("http://evil")\nline two 👋', "Inbound", "contact", "c-1",
    )  # fmt: skip
    out = io.StringIO()
    assert write_csv([row], out) == 1
    header, record = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(header) == COLUMNS
    assert record[8] == '\'=HYPERLINK("http://evil")\nline two 👋'
    assert record[4] == "Alice Nguyen" and record[10] == "contact"


def test_export_row_reads_annotations_or_the_expanded_regarding_name() -> None:
    row = {
        "activityid": "m-1",
        "createdon": "2026-01-02T03:04:05Z",
        "_smsc_sessionid_value": "s-1",
        "_regardingobjectid_value": "c-1",
        "_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "contact",
        "regardingobjectid_contact_smsc_message": {"fullname": "Alice Nguyen"},
        "smsc_status": 105710006,
        "smsc_status@OData.Community.Display.V1.FormattedValue": "Received",
        "smsc_direction": 105710000,
        "smsc_body": "hi",
    }
    exported = export_row(row)
    assert (exported.created, exported.time) == ("2026-01-02", "03:04:05")
    assert exported.full_name == "Alice Nguyen"
    assert (exported.status, exported.direction) == ("Received", "105710000")
    assert (exported.regarding_type, exported.regarding_id) == ("contact", "c-1")
