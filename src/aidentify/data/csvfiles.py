"""Read CSV files the way people save them.

Excel and Windows tools write a UTF-8 byte-order mark and CRLF line ends; a
hand-edited file may have a row with too many or too few fields. Every CSV a
user gives us is read through this module, so a BOM never hides a column name
(``\\ufeffemotion``), CRLF never leaves ``\\r`` in a value, and a malformed row
is one line naming the file and the line: ``FILE line N: expected K fields,
found M``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import pandas as pd

from aidentify.errors import DataError
from aidentify.files import not_utf8_message, os_error_cause

ENCODING = "utf-8-sig"  # reads plain UTF-8 too; drops a leading BOM


def open_csv(path: Path, errors: str = "strict") -> TextIO:
    """Open ``path`` for the csv module: BOM dropped, any line ending accepted."""
    return open(path, newline="", encoding=ENCODING, errors=errors)


def csv_header(path: Path) -> list[str]:
    """The first row's fields, stripped and lower-cased (empty if there is none)."""
    with open_csv(path, errors="replace") as handle:
        first = next(csv.reader(handle), None) or []
    return [c.strip().lower() for c in first]


def first_row(path: Path) -> list[str] | None:
    """The first row as written (for sniffing headerless files)."""
    with open_csv(path, errors="replace") as handle:
        return next(csv.reader(handle), None)


def read_csv_rows(path: Path) -> list[list[str]]:
    """Every non-blank row of ``path``, each checked to have as many fields as the first."""
    path = Path(path)
    rows: list[list[str]] = []
    try:
        with open_csv(path) as handle:
            reader = csv.reader(handle)
            expected = None
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if expected is None:
                    expected = len(row)
                elif len(row) != expected:
                    raise DataError(
                        f"{path} line {reader.line_num}: expected {expected} fields, found {len(row)}"
                    )
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise DataError(not_utf8_message(path, exc)) from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {os_error_cause(exc, path)}") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    return rows


def read_csv_table(path: Path, header: bool = True) -> pd.DataFrame:
    """``path`` as a table of strings (no NaN); column names stripped and lower-cased.

    Without ``header`` the columns are numbered from 0.
    """
    rows = read_csv_rows(path)
    if header:
        columns = [c.strip().lower() for c in rows[0]] if rows else []
        return pd.DataFrame(rows[1:], columns=columns, dtype=str)
    width = len(rows[0]) if rows else 0
    return pd.DataFrame(rows, columns=list(range(width)), dtype=str)
