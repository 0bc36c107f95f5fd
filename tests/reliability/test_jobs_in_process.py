"""Without Redis, background jobs run on two threads of the process, not one thread each.

An import of 1M compounds queues ~100 id-range follow-up jobs; one thread per job held
one PostgreSQL connection each and exhausted the server ("too many clients").
"""

from __future__ import annotations

import threading
import time
from typing import Any

from config import jobs


def test_many_jobs_run_two_at_a_time_and_wait_in_process_waits_for_all(settings: Any) -> None:
    settings.JOBS_IN_PROCESS = True
    running = 0
    most = 0
    done: list[int] = []
    lock = threading.Lock()

    def job(n: int) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1
            done.append(n)
        if n == 0:
            jobs.enqueue_background(job, 100)  # a job that queues another is waited for too

    def boom() -> None:
        raise RuntimeError("a failing job is logged, the others go on")

    jobs.enqueue_background(boom)
    for n in range(50):
        jobs.enqueue_background(job, n)
    jobs.wait_in_process()
    assert sorted(done) == [*range(50), 100]
    assert most <= 2
