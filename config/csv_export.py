"""Streaming CSV downloads, with every cell escaped so a spreadsheet never runs a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.http import StreamingHttpResponse

from compounds.chemistry import csv_safe


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_lines(header, rows), content_type="text/csv")
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
    writer = SafeWriter(buffer)
    for row in _with_header(header, rows):
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _with_header(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    yield header
    yield from rows
