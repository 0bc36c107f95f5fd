"""Retrain a lineage on the new labels, measured on the same frozen validation set."""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from config.exceptions import Conflict, NotFound, PermissionDenied, ServiceUnavailable, ValidationFailed
from config.roles import LEAD, has_role
from cycles import strategies
from cycles.models import ActiveLearningCycle, CycleStatus, Job, JobStatus
from cycles.services.selection import model_outputs, next_cycle_number
from labeling.models import OPEN_STATUSES, AuditAction, AuditEvent, LabelQueueItem, QueueStatus
from labeling.services import audit, queue_changed
from mlmodels import services as model_services
from mlmodels.models import MLModel, ModelStatus
from mlmodels.selectors import lineage_active_version, metrics_headline

logger = logging.getLogger(__name__)

DEFAULT_MIN_NEW_LABELS = 10
# A running job refreshes its heartbeat this often; reconcile calls it dead after
# JOB_STALE_SECONDS without one (a SIGKILLed worker stops beating at once).
HEARTBEAT_SECONDS = 5
JOB_STALE_SECONDS = getattr(settings, "CHEMLOOP_JOB_STALE_SECONDS", 60)


def _lock_cycle(cycle_id: Any) -> ActiveLearningCycle:
    try:
        pk = cycle_id if isinstance(cycle_id, uuid.UUID) else uuid.UUID(str(cycle_id))
        return ActiveLearningCycle.objects.select_for_update(of=("self",)).select_related("model__assay").get(pk=pk)
    except (ActiveLearningCycle.DoesNotExist, ValueError, TypeError, AttributeError) as exc:
        raise NotFound("No such cycle.") from exc


def new_label_count(*, model: MLModel) -> int:
    """Labels this model version has not learned: those given on its queue items, plus
    corrections made since it was trained to labels it was trained on (archived items)."""
    new = LabelQueueItem.objects.filter(model=model, status=QueueStatus.LABELED).count()
    if model.trained_at is None:
        return new
    corrected = (
        AuditEvent.objects.filter(
            action=AuditAction.CORRECT,
            created_at__gt=model.trained_at,
            item__status=QueueStatus.ARCHIVED,
            item__model__name=model.name,
        )
        .values("item_id")
        .distinct()
        .count()
    )
    return new + corrected


def cycle_retrain_trigger(
    *,
    cycle_id: Any,
    user: Any,
    min_new_labels: int = DEFAULT_MIN_NEW_LABELS,
    allow_failed: bool = False,
    inline: bool = False,
) -> Job:
    """Mark the cycle `training` and enqueue exactly one retrain job for it.

    Refuses (409) when the cycle or any cycle of its lineage is training, or when
    fewer than `min_new_labels` labels are new. If the queue is unreachable the
    cycle is put back as it was and a 503 says so.
    """
    if not has_role(user, LEAD):
        raise PermissionDenied("Only leads can trigger retraining.")
    with transaction.atomic():
        cycle = _lock_cycle(cycle_id)
        previous_status = cycle.status
        if cycle.status == CycleStatus.TRAINING:
            raise Conflict("This cycle is already training.", extra={"status": cycle.status})
        if cycle.status == CycleStatus.COMPLETE:
            raise Conflict("This cycle is complete; select a new batch for the next cycle.", extra={"status": cycle.status})
        if cycle.status == CycleStatus.FAILED and not allow_failed:
            raise Conflict("This cycle failed; retry it instead.", extra={"status": cycle.status})
        # A cycle opened on a version that another cycle's retrain has since replaced goes
        # on with the lineage's active version: its open items moved there with the retrain.
        model = lineage_active_version(cycle.model)
        if model is None:
            raise Conflict(f"{cycle.model.name} has no active version to retrain.")
        # Lineage lock: one retrain per lineage at a time.
        list(MLModel.objects.select_for_update().filter(name=model.name).values_list("id", flat=True))
        busy = ActiveLearningCycle.objects.filter(model__name=model.name, status=CycleStatus.TRAINING).exclude(
            pk=cycle.pk
        )
        if busy.exists() or MLModel.objects.filter(name=model.name, status=ModelStatus.TRAINING).exists():
            raise Conflict(f"{model.name} is already being retrained.")
        n_new = new_label_count(model=model)
        if n_new < min_new_labels:
            raise ValidationFailed(
                f"{n_new} new or corrected label{'s' if n_new != 1 else ''} since {model}; at least "
                f"{min_new_labels} are needed to retrain.",
                extra={"field": "min_new_labels", "new_labels": n_new},
            )
        job = Job.objects.create(
            kind="retrain",
            params={"cycle_id": str(cycle.pk)},
            created_by=user if getattr(user, "is_authenticated", False) else None,
            stage="queued",
        )
        cycle.status = CycleStatus.TRAINING
        cycle.job = job
        cycle.error = ""
        cycle.save(update_fields=["status", "job", "error"])
        audit(AuditAction.RETRAIN, actor=user, cycle=cycle, new_labels=n_new, job=str(job.pk))
    if inline:
        # Simulations and benchmarks: run the very same job body right here.
        cycle_retrain_run(job_id=job.pk)
        job.refresh_from_db()
        return job
    # Enqueue after commit so the worker sees the rows; undo if the queue is down.
    try:
        _enqueue(job)
    except Exception as exc:
        logger.exception("could not enqueue retrain job %s", job.pk)
        message = "The job queue (Redis) is unreachable; nothing was started. Try again shortly."
        Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error=message, finished_at=timezone.now())
        ActiveLearningCycle.objects.filter(pk=cycle.pk, status=CycleStatus.TRAINING).update(
            status=previous_status, job=None
        )
        raise ServiceUnavailable(message) from exc
    job.refresh_from_db()
    return job


def job_enqueue(job: Job, func: Callable[[str], None]) -> None:
    """Start `func(job id)`: on RQ under the job's own id, or on a thread of this process
    without Redis (make run), so a page can poll progress either way."""
    if settings.JOBS_IN_PROCESS:
        threading.Thread(target=func, args=(str(job.pk),), daemon=True).start()
        return
    import django_rq

    rq_job = django_rq.get_queue("default").enqueue(
        func, str(job.pk), job_id=str(job.pk), job_timeout=settings.RQ_QUEUES["default"].get("DEFAULT_TIMEOUT", 3600)
    )
    # Inside an outer transaction django-rq defers the enqueue to commit and returns None;
    # the RQ id is ours (job_id above) either way.
    Job.objects.filter(pk=job.pk).update(rq_job_id=rq_job.id if rq_job is not None else str(job.pk))


def _enqueue(job: Job) -> None:
    from cycles import jobs

    job_enqueue(job, jobs.retrain_cycle)


def cycle_retry(*, cycle_id: Any, user: Any) -> Job:
    """Re-run a failed cycle's retrain (labels are intact; the old version is still active)."""
    with transaction.atomic():
        cycle = _lock_cycle(cycle_id)
        if cycle.status != CycleStatus.FAILED:
            raise Conflict(f"Only failed cycles can be retried (this one is {cycle.status}).", extra={"status": cycle.status})
    return cycle_retrain_trigger(cycle_id=cycle_id, user=user, min_new_labels=0, allow_failed=True)


# --- The job itself -----------------------------------------------------------------


class _Heartbeat:
    """Refresh the job's heartbeat from a side thread while the work runs."""

    def __init__(self, job_id: Any) -> None:
        self.job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())
            except Exception:  # noqa: BLE001 - a missed beat must not kill the job
                logger.warning("heartbeat failed for job %s", self.job_id)
            finally:
                close_old_connections()

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def job_progress(*, job_id: Any, stage: str, percent: int) -> None:
    Job.objects.filter(pk=job_id).update(stage=stage[:100], percent=max(0, min(100, percent)), heartbeat_at=timezone.now())


def job_claim(*, job_id: Any) -> bool:
    """Queued → running, once: False when the job already ran or was reconciled as failed
    (a re-delivered job then does nothing)."""
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now(), stage="starting"
    )
    if not claimed:
        logger.info("job %s is not queued; nothing to do", job_id)
    return bool(claimed)


def cycle_retrain_run(*, job_id: Any) -> None:
    """Body of the retrain job: new version, metrics on the frozen validation set, queue moved."""
    if job_claim(job_id=job_id):
        _run_claimed(job_id=job_id)


def _run_claimed(*, job_id: Any) -> None:
    # Split from the claim so a test can play a worker that froze after claiming and woke
    # up after reconcile declared it dead (`_finish` must then discard its version).
    job = Job.objects.get(pk=job_id)
    cycle = ActiveLearningCycle.objects.select_related("model__assay", "model__validation_set").get(
        pk=job.params["cycle_id"]
    )
    parent = lineage_active_version(cycle.model) or cycle.model
    new: MLModel | None = None

    def progress(stage: str, percent: int) -> None:
        job_progress(job_id=job.pk, stage=stage, percent=percent)

    try:
        with _Heartbeat(job.pk):
            progress("creating new version", 2)
            new = model_services.model_version_create(parent=parent, user=job.created_by)
            model_services.model_train(model=new, progress=lambda s, p: progress(s, int(p * 0.85)))
            progress("re-scoring pending items", 88)
            _finish(cycle=cycle, parent=parent, new=new, job=job)
    except Exception as exc:
        logger.exception("retrain of cycle %s failed", cycle.pk)
        message = f"{type(exc).__name__}: {exc}"
        _fail(cycle_id=cycle.pk, job_id=job.pk, new=new, message=message, detail=traceback.format_exc())


def _finish(*, cycle: ActiveLearningCycle, parent: MLModel, new: MLModel, job: Job) -> None:
    pending = list(
        LabelQueueItem.objects.filter(model=parent, status__in=OPEN_STATUSES).values_list("id", "compound_id")
    )
    rescored = _rescore(new=new, cycle=cycle, compound_ids=[c for _, c in pending]) if pending else {}
    trained = set(model_services.model_load(model=new).training_ids)
    with transaction.atomic():
        # Lock order, the one every queue write uses: item rows (primary-key order) before
        # cycle rows. A label, skip or bulk action locks its items, then bumps its cycle's
        # counter; locking the cycle first and then updating its items deadlocked with any
        # of them (PostgreSQL killed one side, often this retrain). Every item this
        # transaction may update belongs to the replaced version and is not archived.
        list(
            LabelQueueItem.objects.select_for_update()
            .filter(model=parent)
            .exclude(status=QueueStatus.ARCHIVED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        locked = ActiveLearningCycle.objects.select_for_update().get(pk=cycle.pk)
        if locked.status != CycleStatus.TRAINING:
            raise Conflict(f"cycle is {locked.status}, not training (reconciled while running?)")
        # A job declared dead (a frozen worker that woke up) must not activate its version:
        # the cycle may be training again under the Retry's job.
        current = Job.objects.select_for_update().get(pk=job.pk)
        if locked.job_id != job.pk or current.status != JobStatus.RUNNING:
            raise Conflict("this job was declared dead and the cycle moved on; its version was discarded")
        model_services.model_activate(model=new)
        # Labels the new version learned are archived with the old one. Labels saved while
        # the job was training are not in it: they stay labeled and move to the new
        # version, so they count toward its next retrain instead of vanishing from the count.
        labeled = list(
            LabelQueueItem.objects.filter(model=parent, status=QueueStatus.LABELED).values_list("id", "compound_id")
        )
        learned = [pk for pk, cid in labeled if cid in trained]
        unseen = [pk for pk, cid in labeled if cid not in trained]
        now = timezone.now()
        LabelQueueItem.objects.filter(pk__in=learned).update(status=QueueStatus.ARCHIVED, updated_at=now)
        LabelQueueItem.objects.filter(pk__in=unseen).update(model=new, updated_at=now)
        queue_changed()
        updates = []
        still_open = list(LabelQueueItem.objects.filter(model=parent, status__in=OPEN_STATUSES))
        late = [item.compound_id for item in still_open if item.compound_id not in rescored]
        if late:
            # Opened after the re-scoring above (a lead reset a skipped item meanwhile): score
            # them now, or they would carry the replaced version's prediction and priority.
            rescored = {**rescored, **_rescore(new=new, cycle=cycle, compound_ids=late)}
        for item in still_open:
            values = rescored.get(item.compound_id)
            item.model = new
            if values:
                for key, value in values.items():
                    setattr(item, key, value)
            updates.append(item)
        LabelQueueItem.objects.bulk_update(
            updates,
            ["model", "prediction", "uncertainty", "applicability_distance", "probabilities", "priority_score", "score_components"],
            batch_size=1000,
        )
        _carry_over(cycle=locked, new=new, job=job)
        # Other cycles still labeling on the replaced version: one with nothing left to label
        # or learn (its labels went into this version, the rest were skipped) is complete,
        # with this retrain as its result; the others go on with the new version (their open
        # items just moved there), so their next retrain starts from it.
        siblings = ActiveLearningCycle.objects.filter(model=parent, status=CycleStatus.LABELING).exclude(pk=cycle.pk)
        siblings.exclude(items__status__in=(*OPEN_STATUSES, QueueStatus.LABELED)).update(
            status=CycleStatus.COMPLETE,
            result_model=new,
            job=job,
            metrics_before=metrics_headline(parent.metrics),
            metrics_after=metrics_headline(new.metrics),
            completed_at=now,
        )
        siblings.update(model=new)
        locked.status = CycleStatus.COMPLETE
        locked.result_model = new
        locked.metrics_before = metrics_headline(parent.metrics)
        locked.metrics_after = metrics_headline(new.metrics)
        locked.completed_at = timezone.now()
        locked.error = ""
        locked.save()
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.SUCCEEDED,
            stage="done",
            percent=100,
            finished_at=timezone.now(),
            result={"model_id": new.pk, "version": new.version, "rescored": len(rescored)},
        )


def _carry_over(*, cycle: ActiveLearningCycle, new: MLModel, job: Job) -> ActiveLearningCycle | None:
    """What a retrain did not learn of its cycle goes on in a new cycle.

    The retrained cycle is complete: its counts and before/after describe what it did.
    Its still-open items and the labels saved while it was training (both already moved
    to `new`) become the next cycle of the lineage, labeling, so those labels count for
    the cycle that will learn them and a lead can retrain from it.
    """
    moving = LabelQueueItem.objects.filter(cycle=cycle).filter(
        Q(status__in=OPEN_STATUSES) | Q(status=QueueStatus.LABELED, model=new)
    )
    carried = moving.count()
    if not carried:
        return None
    labeled = moving.filter(status=QueueStatus.LABELED).count()
    # `cycle` is the row _finish locked and saves afterwards: adjust it in memory.
    cycle.items_labeled = max(0, cycle.items_labeled - labeled)
    # The lineage lock `cycle_select` takes too: consecutive, unique cycle numbers.
    list(MLModel.objects.select_for_update().filter(name=new.name).values_list("id", flat=True))
    successor = ActiveLearningCycle.objects.create(
        model=new,
        cycle_number=next_cycle_number(new.name),
        selection_strategy=cycle.selection_strategy,
        strategy_params=cycle.strategy_params,
        batch_size=carried,
        pool_description=f"open items carried over from cycle #{cycle.cycle_number}"[:200],
        status=CycleStatus.LABELING,
        metrics_before=metrics_headline(new.metrics),
        items_selected=carried,
        items_labeled=labeled,
        created_by=job.created_by,
    )
    moving.update(cycle=successor, updated_at=timezone.now())
    return successor


def _rescore(*, new: MLModel, cycle: ActiveLearningCycle, compound_ids: list[int]) -> dict[int, dict[str, Any]]:
    """New predictions and priorities for still-open items, with the cycle's strategy."""
    scores = model_services.model_score_compounds(
        model=new, compound_ids=compound_ids, with_members=cycle.selection_strategy == "bald"
    )
    params = {k: v for k, v in (cycle.strategy_params or {}).items() if k in ("weights", "threshold", "beta", "xi", "positive_class")}
    try:
        outputs = model_outputs(model=new, scores=scores)
        strategy = cycle.selection_strategy if cycle.selection_strategy != "expected_improvement" else "ucb"
        priority = strategies.select(strategy, outputs, len(compound_ids), params=params, random_state=0).scores
    except strategies.StrategyError:
        priority = scores.uncertainty
    out: dict[int, dict[str, Any]] = {}
    for k, cid in enumerate(scores.ids):
        out[int(cid)] = {
            "prediction": float(scores.prediction[k]),
            "uncertainty": float(scores.uncertainty[k]),
            "applicability_distance": float(scores.applicability[k]),
            "probabilities": [float(p) for p in scores.proba[k]] if scores.proba is not None else None,
            "priority_score": float(priority[k]) if np.isfinite(priority[k]) else 0.0,
        }
    return out


def _fail(*, cycle_id: Any, job_id: Any, new: MLModel | None, message: str, detail: str = "") -> None:
    """Record a failure: the old version stays active and every label stays where it was."""
    with transaction.atomic():
        if new is not None and new.pk:
            MLModel.objects.filter(pk=new.pk).exclude(status=ModelStatus.ACTIVE).update(
                status=ModelStatus.FAILED, error=message[:5000]
            )
        # Only while the cycle still waits on this job: a dead job's late failure must not
        # fail the Retry that replaced it.
        ActiveLearningCycle.objects.filter(pk=cycle_id, status=CycleStatus.TRAINING, job_id=job_id).update(
            status=CycleStatus.FAILED, error=message[:5000]
        )
        Job.objects.filter(pk=job_id).exclude(status=JobStatus.SUCCEEDED).update(
            status=JobStatus.FAILED, error=(message + ("\n\n" + detail if detail else ""))[:20000], finished_at=timezone.now()
        )


# --- Reconcile ------------------------------------------------------------------------


def _rq_status(job: Job) -> str | None:
    """RQ's view of the job: its status, "missing", or None when Redis can't be asked."""
    if settings.JOBS_IN_PROCESS or not job.rq_job_id:
        return None
    try:
        import django_rq
        from rq.exceptions import NoSuchJobError
        from rq.job import Job as RQJob

        try:
            rq_job = RQJob.fetch(job.rq_job_id, connection=django_rq.get_connection("default"))
        except NoSuchJobError:
            return "missing"
        status = rq_job.get_status(refresh=True)
        return str(getattr(status, "value", status)) if status is not None else "missing"
    except Exception:  # noqa: BLE001 - Redis down: decide on the heartbeat alone
        return None


def jobs_reconcile(*, stale_after: float | None = None, job_ids: list[Any] | None = None) -> list[Job]:
    """Turn jobs that died without reporting (worker killed, job lost) into `failed`.

    A job is dead when RQ says it failed/stopped/was lost, or when it is running
    and its heartbeat is older than `stale_after` seconds.
    """
    stale_after = JOB_STALE_SECONDS if stale_after is None else stale_after
    now = timezone.now()
    qs = Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
    if job_ids is not None:
        qs = qs.filter(pk__in=job_ids)
    failed = []
    for job in qs:
        rq_status = _rq_status(job)
        dead = rq_status in ("failed", "stopped", "canceled", "missing")
        if job.status == JobStatus.RUNNING and job.heartbeat_at and now - job.heartbeat_at > timedelta(seconds=stale_after):
            dead = True
        if job.status == JobStatus.QUEUED and rq_status is None and not settings.JOBS_IN_PROCESS and not job.rq_job_id:
            # Enqueued row without an RQ job: only when it is old (the enqueue may be in flight).
            dead = now - job.created_at > timedelta(seconds=max(stale_after, 30))
        if not dead:
            continue
        reason = "The worker stopped without reporting (killed or lost); labels are intact — retry the cycle."
        if job.kind == "select":
            reason = "The worker stopped without reporting (killed or lost); no cycle was opened — select again."
        cycle_id = job.params.get("cycle_id")
        _fail(cycle_id=cycle_id, job_id=job.pk, new=None, message=reason)
        if cycle_id:
            MLModel.objects.filter(
                Q(status=ModelStatus.TRAINING), name__in=ActiveLearningCycle.objects.filter(pk=cycle_id).values("model__name")
            ).update(status=ModelStatus.FAILED, error=reason)
        job.refresh_from_db()
        failed.append(job)
    return failed
