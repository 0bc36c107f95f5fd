"""Enqueue background jobs after commit: on RQ when Redis is configured, in-process otherwise."""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
    """Run `func(*args)` once the current transaction commits.

    Enqueuing after commit matters: a worker must never pick up a job whose rows
    are not yet visible to it.
    """
    if settings.JOBS_IN_PROCESS:
        transaction.on_commit(lambda: func(*args))
        return

    def _enqueue() -> None:
        import django_rq

        django_rq.get_queue("default").enqueue(func, *args, job_id=job_id)

    transaction.on_commit(_enqueue)


def enqueue_now(func: Callable[..., Any], *args: Any, job_id: str | None = None) -> str | None:
    """Enqueue immediately (caller already committed); returns the RQ job id."""
    if settings.JOBS_IN_PROCESS:
        func(*args)
        return None
    import django_rq

    job = django_rq.get_queue("default").enqueue(func, *args, job_id=job_id)
    return job.id


# Without Redis, background jobs run on two threads of this process. Not one thread per
# job: an import of 1M compounds queues ~100 id-range jobs, and as many threads would
# each hold a database connection (PostgreSQL refused the rest: "too many clients").
_IN_PROCESS_WORKERS = 2
_executor: ThreadPoolExecutor | None = None
_pending: set[Future[None]] = set()
_lock = threading.Lock()


def _run_in_process(func: Callable[..., Any], *args: Any) -> None:
    from django.db import connection

    try:
        func(*args)
    except Exception:
        logger.exception("background job %s%r failed", getattr(func, "__name__", func), args)
    finally:
        connection.close()  # this thread's connection, not left open until the process exits


def enqueue_background(func: Callable[..., Any], *args: Any) -> None:
    """Fire-and-forget work: an RQ job, or a job on this process's two job threads when
    there is no Redis (`wait_in_process` waits for them)."""
    if settings.JOBS_IN_PROCESS:
        global _executor
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=_IN_PROCESS_WORKERS, thread_name_prefix="chemloop-job")
            future = _executor.submit(_run_in_process, func, *args)
            _pending.add(future)
        future.add_done_callback(_pending.discard)
        return
    import django_rq

    django_rq.get_queue("default").enqueue(func, *args)


def wait_in_process() -> None:
    """Block until every in-process background job queued so far (and any they queue) is done."""
    while True:
        with _lock:
            pending = list(_pending)
        if not pending:
            return
        wait(pending)
