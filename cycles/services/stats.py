"""Statistics of a model lineage's cycles: counts, before/after metrics, convergence."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from cycles.models import ActiveLearningCycle, CycleStatus
from labeling.selectors import queue_counts
from mlmodels.ml.metrics import primary_metric
from mlmodels.models import MLModel, ModelStatus

# Converged when each of the last K completed cycles moved the primary metric by less than δ.
CONVERGENCE_K = getattr(settings, "CHEMLOOP_CONVERGENCE_K", 2)
CONVERGENCE_DELTA = getattr(settings, "CHEMLOOP_CONVERGENCE_DELTA", 0.01)


def _metric(metrics: dict[str, Any] | None, key: str) -> float | None:
    value = (metrics or {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def cycle_stats(*, model: MLModel, k: int = CONVERGENCE_K, delta: float = CONVERGENCE_DELTA) -> dict[str, Any]:
    """The spec's get_cycle_stats for the lineage `model` belongs to."""
    task = "classification" if model.assay.is_classification else "regression"
    key, direction = primary_metric(task)
    versions = list(MLModel.objects.filter(name=model.name).order_by("version"))
    cycles = list(
        ActiveLearningCycle.objects.filter(model__name=model.name)
        .select_related("model", "result_model__parent", "job")
        .order_by("cycle_number")
    )
    rows = []
    # One entry per retrain (result version): a cycle completed by another cycle's retrain
    # shares that retrain, and counting it twice would claim convergence too early.
    improvements: dict[Any, tuple[Any, float]] = {}
    numbers = {str(c.pk): c.cycle_number for c in cycles}
    for c in cycles:
        before = _metric(c.metrics_before, key)
        after = _metric(c.metrics_after, key)
        change = None
        if before is not None and after is not None:
            change = after - before
            if c.status == CycleStatus.COMPLETE and c.completed_at is not None:
                retrain = c.result_model_id or c.pk
                improvements.setdefault(retrain, (c.completed_at, -change if direction == "lower" else change))
        # The cycle whose retrain it was reports what it added; a sibling it completed names it.
        owner = numbers.get(str((c.job.params or {}).get("cycle_id"))) if c.job else None
        shared = owner is not None and owner != c.cycle_number
        rows.append(
            {
                "id": str(c.pk),
                "cycle_number": c.cycle_number,
                "status": c.status,
                "strategy": c.selection_strategy,
                "model_version": c.model.version,
                "result_version": c.result_model.version if c.result_model else None,
                "items_selected": c.items_selected,
                "items_labeled": c.items_labeled,
                "items_skipped": c.items_skipped,
                "metrics_before": c.metrics_before,
                "metrics_after": c.metrics_after,
                "primary_before": before,
                "primary_after": after,
                "primary_change": change,
                "training_size_after": c.result_model.training_size if c.result_model else None,
                "labels_added": None if shared else _labels_added(c.result_model),
                "retrained_with_cycle": owner if shared else None,
                "error": c.error,
                "job_id": str(c.job_id) if c.job_id else None,
                "started_at": c.started_at.isoformat(),
                "completed_at": c.completed_at.isoformat() if c.completed_at else None,
            }
        )
    # The last k retrains in the order they finished (a late retrain of an old cycle is
    # recent), each moving the metric by less than delta either way: a retrain that made
    # the model clearly worse is a warning sign, not convergence.
    recent = [gain for _, gain in sorted(improvements.values(), key=lambda pair: pair[0])[-k:]]
    converged = len(recent) >= k and all(abs(gain) < delta for gain in recent)
    curve = [
        {"version": v.version, "labels": v.training_size, "value": _metric(v.metrics, key), "status": v.status}
        for v in versions
        # A failed version (e.g. a job declared dead that trained anyway) was never used.
        if v.trained_at is not None and v.status != ModelStatus.FAILED
    ]
    active = next((v for v in versions if v.status == "active"), None)
    return {
        "model": {"id": model.pk, "name": model.name, "version": model.version, "status": model.status},
        "active_version": {"id": active.pk, "version": active.version} if active else None,
        "primary_metric": key,
        "direction": direction,
        "cycles": rows,
        "learning_curve": curve,
        "total_cycles": len(cycles),
        "total_labeled": sum(c.items_labeled for c in cycles),
        "total_skipped": sum(c.items_skipped for c in cycles),
        # The whole lineage: labeled items archive with the version that learned them.
        "queue": queue_counts(lineage=model.name),
        "converged": converged,
        "convergence_rule": {"k": k, "delta": delta},
    }


def _labels_added(result: MLModel | None) -> int | None:
    """What a cycle's retrain added to the training set. Not the cycle's own label count:
    its items left open at the retrain are labeled later, on the next version."""
    if result is None or result.parent is None:
        return None
    return result.training_size - result.parent.training_size
