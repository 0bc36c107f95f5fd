"""Run calls side by side, each on its own thread and database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def run_concurrently(calls: list[Callable[[], Any]]) -> tuple[list[Any], list[BaseException]]:
    """Start every call at the same moment, each on its own thread and connection."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(fn: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            value = fn()
            with lock:
                results.append(value)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted by the caller
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results, errors
