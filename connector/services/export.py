"""Export messages as CSV, with spreadsheet-formula text defused.

The columns are part of the product (Message ID, Thread ID, Created, Time, Full Name, From,
To, Status, Message, Direction, Regarding Type, Regarding ID). A cell that a spreadsheet would
run as a formula gets a leading single quote, the OWASP CSV-injection defence: text starting
with a tab or a carriage return, or with ``=``, ``+``, ``-``, ``@``, their full-width forms
or a full-width slash once the leading characters a spreadsheet drops are set aside
(whitespace of any script, line breaks, zero-width and other format characters such as the
BOM, control characters such as NUL). Everything else, unicode and emoji included, is
written exactly. Rows come from a :class:`~connector.ports.MessageArchive`.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import astuple
from typing import TextIO

from connector.ports import ExportRow

COLUMNS = (
    "Message ID",
    "Thread ID",
    "Created",
    "Time",
    "Full Name",
    "From",
    "To",
    "Status",
    "Message",
    "Direction",
    "Regarding Type",
    "Regarding ID",
)
_FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\uff0f")
# Separators (Z*), controls (Cc: NUL, tab, LF, CR) and format characters (Cf: zero-width
# space, word joiner, BOM): spreadsheets skip or drop them before deciding what a cell is.
_IGNORED_LEADING = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
_OWASP_START = ("\t", "\r")  # formula starters on OWASP's list whatever follows them
# An E.164 number starts with "+" but a spreadsheet can only read it as a number, never
# run it: it is exported as is, so sellers see +14155550123, not '+14155550123.
_E164 = re.compile(r"\+[1-9][0-9]{5,14}")


def _as_seen(cell: str) -> str:
    """``cell`` without the leading characters a spreadsheet skips."""
    for index, char in enumerate(cell):
        if unicodedata.category(char) not in _IGNORED_LEADING:
            return cell[index:]
    return ""


def defuse(cell: str) -> str:
    """``cell`` made inert for spreadsheets (a quote before formula-starting text)."""
    if _E164.fullmatch(cell):
        return cell
    risky = cell.startswith(_OWASP_START) or _as_seen(cell).startswith(_FORMULA_START)
    return "'" + cell if risky else cell


def write_csv(rows: Iterable[ExportRow], out: TextIO) -> int:
    """Write the header and ``rows`` to ``out``; returns how many rows were written."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([defuse(str(value)) for value in astuple(row)])
        count += 1
    return count
