"""Enqueue background jobs after commit: on RQ when Redis is configured, in-process otherwise."""

import logging
from collections.abc import Callable
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


def enqueue_background(func: Callable[..., Any], *args: Any) -> None:
    """Fire-and-forget work: an RQ job, or a daemon thread when there is no Redis."""
    if settings.JOBS_IN_PROCESS:
        import threading

        threading.Thread(target=func, args=args, daemon=True).start()
        return
    import django_rq

    django_rq.get_queue("default").enqueue(func, *args)
