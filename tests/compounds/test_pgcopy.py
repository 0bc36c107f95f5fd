import numpy as np
import pytest
from django.db import connection

from compounds import pgcopy

pytestmark = pytest.mark.django_db


def _copy(query: str) -> bytes:
    import io

    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY ({query}) TO STDOUT (FORMAT binary)", buffer)
    return buffer.getvalue()


def test_fixed_width_rows_from_postgresql_become_arrays() -> None:
    data = _copy(
        "SELECT g::bigint, decode(lpad(to_hex(g), 6, '0'), 'hex') "
        "FROM generate_series(1, 1000) g ORDER BY g"
    )
    ids, blobs = pgcopy.parse_fixed_width(data, [8, 3])
    assert ids.view(">i8").ravel().tolist() == list(range(1, 1001))
    assert blobs.shape == (1000, 3)
    assert int.from_bytes(blobs[999].tobytes(), "big") == 1000


def test_no_rows_is_an_empty_result() -> None:
    ids, blobs = pgcopy.parse_fixed_width(_copy("SELECT 1::bigint, 'x'::bytea WHERE false"), [8, 1])
    assert ids.shape == (0, 8) and blobs.shape == (0, 1)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1::bigint, 'abc'::bytea UNION ALL SELECT 2::bigint, 'de'::bytea",  # another width
        "SELECT 1::bigint, NULL::bytea UNION ALL SELECT 2::bigint, 'abc'::bytea",  # a NULL
        "SELECT 1::bigint, 'abc'::bytea, 1::int",  # another field count
    ],
)
def test_rows_that_are_not_all_fixed_width_are_refused(query: str) -> None:
    assert pgcopy.parse_fixed_width(_copy(query), [8, 3]) is None


def test_a_buffer_that_is_not_binary_copy_is_refused() -> None:
    assert pgcopy.parse_fixed_width(b"id,smiles\n1,CCO\n", [8, 3]) is None
    assert pgcopy.parse_fixed_width(np.zeros(40, dtype=np.uint8).tobytes(), [8, 3]) is None
