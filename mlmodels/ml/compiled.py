"""Compiled (numba) kernels for the hot loops of scoring, and splitting their rows over threads.

Kernels are compiled single-threaded with the GIL released, and callers split rows
over Python threads (`split_rows`) rather than using numba's `parallel=True`: its
default threading layer aborts the process when two threads launch parallel kernels
at once, which a threaded web server or the scoring prefetch thread would do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba

# Below this many rows a second thread costs more than it saves.
MIN_ROWS_PER_THREAD = 2048


def kernel(fn: Callable[..., Any]) -> Any:
    """numba.njit(nogil=True), cached on disk (next to the module, or in the user's
    cache directory, or NUMBA_CACHE_DIR) so a new process loads instead of compiling
    (~2 s a kernel); compiled per process where no cache directory is writable."""
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(fn)


def default_workers() -> int:
    """Threads for one call: the cores this process may use (2 on the reference machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def split_rows(fn: Callable[[int, int], object], n: int, *, workers: int | None = None, pieces: int = 1) -> None:
    """Call fn(lo, hi) over contiguous row ranges covering 0..n, side by side.

    fn must write disjoint slices of its outputs and release the GIL (a
    `numba.njit(nogil=True)` kernel does), so the result is the same for any split.
    `pieces` > 1 cuts the rows into that many ranges per worker, handed out as workers
    free up: a thread slowed by another busy thread on the same cores (a prefetch
    thread, a web request) then holds up only its current range, not half of the rows.
    """
    workers = min(workers or default_workers(), max(1, n // MIN_ROWS_PER_THREAD))
    if workers <= 1:
        fn(0, n)
        return
    ranges = min(workers * max(1, pieces), max(1, n // MIN_ROWS_PER_THREAD))
    bounds = [n * k // ranges for k in range(ranges + 1)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # list() re-raises the first error of any range.
        list(pool.map(fn, bounds[:-1], bounds[1:]))
