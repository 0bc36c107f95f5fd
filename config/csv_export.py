"""Streaming CSV downloads, with every cell escaped so a spreadsheet never runs a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.http import StreamingHttpResponse

from compounds.chemistry import csv_safe

# Excel opens a CSV without a byte order mark in the machine's legacy code page, so
# "Ünlöslich" or "µM" come out as mojibake; with it, as UTF-8. Python's "utf-8-sig" and
# the import (compounds.chemistry) read the mark and drop it.
BOM = "\ufeff"


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class SafeWriter:
    """csv.writer whose cells are escaped so a spreadsheet never runs one as a formula."""

    def __init__(self, fh: Any) -> None:
        self._writer = csv.writer(fh)

    def writerow(self, row: Sequence[Any]) -> None:
        self._writer.writerow([csv_safe(v) for v in row])


def _lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = SafeWriter(buffer)
    for row in _with_header(header, rows):
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _with_header(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    yield header
    yield from rows
