"""Read fixed-width rows from PostgreSQL's binary COPY format straight into numpy.

Scoring a pool reads each compound's id, packed fingerprint and stored features:
~1 KB a row. Through the DB-API every row becomes a Python tuple and each bytea is
hex-encoded by the server and decoded by the driver; at 50,000 rows that costs
~1.7 s a chunk. In binary COPY every column whose values all have the same width
sits at the same offset of every row, so the whole result is one structured numpy
array, read without a Python object per row.

Format (PostgreSQL docs, "COPY … binary format"): an 11-byte signature, int32 flags,
int32 header-extension length (+ extension), then per row int16 field count and per
field int32 length (-1 for NULL) + data, then int16 -1. All integers big-endian.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def fixed_width_dtype(widths: Sequence[int]) -> np.dtype:
    """Structured dtype of one row whose fields have these byte widths."""
    fields: list[tuple[str, str] | tuple[str, str, tuple[int]]] = [("n_fields", ">i2")]
    for i, width in enumerate(widths):
        fields.append((f"len{i}", ">i4"))
        fields.append((f"f{i}", "u1", (width,)))
    return np.dtype(fields)


def parse_fixed_width(data: bytes | memoryview, widths: Sequence[int]) -> list[np.ndarray] | None:
    """Each field as an (n_rows, width) uint8 array, or None when the rows are not all fixed-width.

    None (a NULL, a value of another width, an unexpected field count) tells the
    caller to read these rows the ordinary way; it never guesses.
    """
    buf = memoryview(data).cast("B")
    if bytes(buf[: len(SIGNATURE)]) != SIGNATURE or len(buf) < len(SIGNATURE) + 10:
        return None
    offset = len(SIGNATURE) + 4
    extension = int.from_bytes(buf[offset : offset + 4], "big", signed=False)
    start = offset + 4 + extension
    body = len(buf) - start - 2  # the int16 -1 trailer
    if body < 0 or bytes(buf[-2:]) != b"\xff\xff":
        return None
    dtype = fixed_width_dtype(widths)
    if body % dtype.itemsize:
        return None
    rows = np.frombuffer(buf, dtype=dtype, count=body // dtype.itemsize, offset=start)
    if rows.size and (rows["n_fields"] != len(widths)).any():
        return None
    for i, width in enumerate(widths):
        if rows.size and (rows[f"len{i}"] != width).any():
            return None
    return [np.ascontiguousarray(rows[f"f{i}"]) for i in range(len(widths))]
