"""Without Redis, background jobs run on two threads of the process, not one thread each.

An import of 1M compounds queues ~100 id-range follow-up jobs; one thread per job held
one PostgreSQL connection each and exhausted the server ("too many clients").
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from compounds.models import Compound
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


@pytest.mark.django_db(transaction=True)
def test_each_job_closes_its_database_connection(settings: Any) -> None:
    # Two threads live on for the process: a connection left open after each job would be
    # held until the process exits (the 1M import ran PostgreSQL out of connections).
    settings.JOBS_IN_PROCESS = True
    used: list[Any] = []

    def job() -> None:
        Compound.objects.exists()
        used.append(connections["default"])  # this thread's connection wrapper

    for _ in range(6):
        jobs.enqueue_background(job)
    jobs.wait_in_process()
    assert len(used) == 6 and all(wrapper.connection is None for wrapper in used)


@pytest.mark.django_db(transaction=True)
def test_the_import_command_returns_only_when_its_follow_ups_are_done(settings: Any, tmp_path: Path) -> None:
    settings.JOBS_IN_PROCESS = True
    settings.CHEMLOOP_IMPORT_FOLLOWUPS = ["compounds.services.compound_patterns_backfill_enqueue"]
    f = tmp_path / "small.smi"
    f.write_text("".join(f"{'C' * n}O c{n}\n" for n in range(1, 41)))
    call_command("import_compounds", str(f), "--dataset", "d")
    assert Compound.objects.count() == 40 and not Compound.objects.filter(pattern_fp__isnull=True).exists()
