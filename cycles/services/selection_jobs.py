"""Selection as a background job, for pools whose scoring takes a minute (1M compounds on 2 cores).

The request only runs the checks that need no scoring (`selection_check`) and queues a
`select` Job; the job runs the very same `cycle_select` and records the new cycle in
`Job.result`, or the reason it refused (a strategy parameter, an empty pool) in
`Job.error`. A selection that fails opens no cycle: `cycle_select` writes in one
transaction at its end.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import asdict
from typing import Any

from django.db import transaction
from django.utils import timezone

from config.exceptions import ApplicationError, ServiceUnavailable, ValidationFailed
from cycles.models import Job, JobStatus
from cycles.services.retraining import _Heartbeat, job_claim, job_enqueue, job_progress
from cycles.services.selection import PoolSpec, cycle_select, selection_check
from mlmodels.models import MLModel

logger = logging.getLogger(__name__)

KIND = "select"


def cycle_select_start(
    *,
    model: MLModel,
    user: Any,
    strategy: str = "uncertainty",
    batch_size: int = 50,
    params: dict[str, Any] | None = None,
    pool: PoolSpec | None = None,
    random_state: int | None = None,
) -> Job:
    """Check the request and queue the selection; the returned job reports progress and,
    once it succeeded, `result["cycle_id"]`."""
    selection_check(model=model, user=user, strategy=strategy, batch_size=batch_size)
    pool = pool or PoolSpec()
    if pool.kind == "smiles":
        # Pasted structures are registered by the selection: that stays with the request
        # that pasted them (a list that size scores in seconds anyway).
        raise ValidationFailed(
            "a pasted list is selected right away, not in the background", extra={"field": "background"}
        )
    job = Job.objects.create(
        kind=KIND,
        params={
            "model_id": model.pk,
            "strategy": strategy,
            "batch_size": batch_size,
            "params": params or {},
            "pool": {**asdict(pool), "compound_ids": list(pool.compound_ids), "smiles": []},
            "random_state": random_state,
        },
        created_by=user if getattr(user, "is_authenticated", False) else None,
        stage="queued",
    )
    try:
        _enqueue(job)
    except Exception as exc:
        logger.exception("could not enqueue selection job %s", job.pk)
        message = "The job queue (Redis) is unreachable; nothing was started. Try again shortly."
        Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error=message, finished_at=timezone.now())
        raise ServiceUnavailable(message) from exc
    job.refresh_from_db()
    return job


def _enqueue(job: Job) -> None:
    from cycles import jobs

    job_enqueue(job, jobs.select_cycle)


def cycle_select_run(*, job_id: Any) -> None:
    """Body of the selection job."""
    if not job_claim(job_id=job_id):
        return
    job = Job.objects.select_related("created_by").get(pk=job_id)
    p = job.params

    def progress(stage: str, percent: int) -> None:
        job_progress(job_id=job.pk, stage=stage, percent=percent)

    try:
        with _Heartbeat(job.pk):
            model = MLModel.objects.select_related("assay").get(pk=p["model_id"])
            pool = PoolSpec(**{**p["pool"], "compound_ids": tuple(p["pool"]["compound_ids"]), "smiles": ()})
            progress("scoring pool", 1)
            result = cycle_select(
                model=model, user=job.created_by, strategy=p["strategy"], batch_size=p["batch_size"],
                params=p["params"], pool=pool, random_state=p["random_state"], progress=progress,
            )
    except ApplicationError as exc:
        # A refusal the request would have answered with a 400/409: the job says why.
        field = exc.extra.get("field")
        _fail(job.pk, f"{exc.message}" + (f" (field: {field})" if field else ""))
        return
    except Exception as exc:
        logger.exception("selection job %s failed", job.pk)
        _fail(job.pk, f"{type(exc).__name__}: {exc}", detail=traceback.format_exc())
        return
    cycle = result.cycle
    assert cycle is not None  # not a preview
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, stage="done", percent=100, finished_at=timezone.now(),
        result={
            "cycle_id": str(cycle.pk), "cycle_number": cycle.cycle_number, "model_id": cycle.model_id,
            "items": len(result.candidates), "pool_size": result.pool_size,
        },
    )


def _fail(job_id: Any, message: str, detail: str = "") -> None:
    with transaction.atomic():
        Job.objects.filter(pk=job_id).exclude(status=JobStatus.SUCCEEDED).update(
            status=JobStatus.FAILED, error=(message + ("\n\n" + detail if detail else ""))[:20000],
            finished_at=timezone.now(),
        )
