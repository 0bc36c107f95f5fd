"""The spec's ActiveLearningService as a thin facade over the service functions."""

from __future__ import annotations

from typing import Any

from cycles.services.retraining import DEFAULT_MIN_NEW_LABELS, cycle_retrain_trigger
from cycles.services.selection import PoolSpec, cycle_select
from cycles.services.stats import cycle_stats
from labeling import selectors as queue_selectors
from labeling import services as queue_services
from mlmodels.models import MLModel


class ActiveLearningService:
    """Active learning for iterative model improvement (one model lineage)."""

    def __init__(self, model_id: int, *, user: Any = None) -> None:
        self.model = MLModel.objects.select_related("assay").get(pk=model_id)
        self.user = user

    def select_samples(self, pool: list[str] | None = None, strategy: str = "uncertainty", batch_size: int = 50,
                       exclude_labeled: bool = True, **params: Any) -> list[dict[str, Any]]:
        # Labeled, pending and validation compounds are always excluded (exclude_labeled is kept for the spec).
        spec = PoolSpec(kind="smiles", smiles=tuple(pool)) if pool else PoolSpec()
        result = cycle_select(model=self.model, user=self.user, strategy=strategy, batch_size=batch_size,
                              params=params or None, pool=spec)
        return [{"compound_id": c.compound.pk, "priority_score": c.priority_score, "prediction": c.prediction,
                 "uncertainty": c.uncertainty} for c in result.candidates]

    def add_to_queue(self, compound_ids: list[int], selection_batch: int) -> int:
        entries = [queue_services.QueueEntry(compound_id=c, priority_score=0.0) for c in compound_ids]
        return len(queue_services.queue_items_add(model=self.model, cycle=None, selection_batch=selection_batch,
                                                  strategy="manual", entries=entries))

    def get_pending_items(self, user_id: int | None = None, limit: int = 20) -> list[Any]:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
        return queue_selectors.queue_pending_items(user=user, model_id=self.model.pk, limit=limit)

    def submit_label(self, item_id: Any, label: Any, source: str, confidence: str, notes: str | None,
                     user_id: int) -> Any:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(pk=user_id)
        return queue_services.label_submit(item_id=item_id, user=user, value=label, source=source,
                                           confidence=confidence, notes=notes or "")

    def trigger_retrain(self, cycle_id: Any, min_new_labels: int = DEFAULT_MIN_NEW_LABELS) -> Any:
        return cycle_retrain_trigger(cycle_id=cycle_id, user=self.user, min_new_labels=min_new_labels).pk

    def get_cycle_stats(self, model_id: int | None = None) -> dict[str, Any]:
        model = MLModel.objects.get(pk=model_id) if model_id else self.model
        return cycle_stats(model=model)
