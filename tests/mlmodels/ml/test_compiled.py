"""mlmodels.ml.compiled: the kernel decorator and the row split."""

from __future__ import annotations

import numpy as np
import pytest

from mlmodels.ml.compiled import MIN_ROWS_PER_THREAD, kernel, split_rows


def test_a_kernel_whose_source_has_no_cache_directory_still_compiles() -> None:
    # Code without a file on disk has no cache locator: numba refuses cache=True for it,
    # as it would for a read-only installation without a writable home directory.
    namespace: dict = {}
    exec(compile("def add_one(x):\n    return x + 1\n", "<generated>", "exec"), namespace)
    add_one = kernel(namespace["add_one"])
    assert add_one(41) == 42


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_split_rows_covers_every_row_once(workers: int) -> None:
    n = 5 * MIN_ROWS_PER_THREAD + 3
    hits = np.zeros(n, dtype=np.int64)
    ranges = []

    def mark(lo: int, hi: int) -> None:
        ranges.append((lo, hi))
        hits[lo:hi] += 1

    split_rows(mark, n, workers=workers)
    assert (hits == 1).all()
    assert len(ranges) == min(workers, 5)  # never fewer than MIN_ROWS_PER_THREAD rows a range


def test_split_rows_raises_a_ranges_error() -> None:
    def fail(lo: int, hi: int) -> None:
        if lo > 0:
            raise ValueError("bad range")

    with pytest.raises(ValueError, match="bad range"):
        split_rows(fail, 4 * MIN_ROWS_PER_THREAD, workers=2)
