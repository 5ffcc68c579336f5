"""Export messages as CSV, with spreadsheet-formula text defused.

The columns are part of the product (Message ID, Thread ID, Created, Time, Full Name, From,
To, Status, Message, Direction, Regarding Type, Regarding ID). A cell that a spreadsheet would
run as a formula (text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
gets a leading single quote, the OWASP CSV-injection defence; everything else, unicode and
emoji included, is written exactly. Rows come from a :class:`~connector.ports.MessageArchive`.
"""

from __future__ import annotations

import csv
import re
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
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# An E.164 number starts with "+" but a spreadsheet can only read it as a number, never
# run it: it is exported as is, so sellers see +14155550123, not '+14155550123.
_E164 = re.compile(r"\+[1-9][0-9]{5,14}")


def defuse(cell: str) -> str:
    """``cell`` made inert for spreadsheets (a quote before formula-starting text)."""
    if _E164.fullmatch(cell):
        return cell
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def write_csv(rows: Iterable[ExportRow], out: TextIO) -> int:
    """Write the header and ``rows`` to ``out``; returns how many rows were written."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([defuse(str(value)) for value in astuple(row)])
        count += 1
    return count
