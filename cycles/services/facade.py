"""The spec's ActiveLearningService as a thin facade over the service functions."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from config.exceptions import Conflict, ValidationFailed
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
        """The ranked batch, written nowhere (a preview); `add_to_queue` queues it.

        `pool`: SMILES to consider (default: every unlabeled compound of the assay).
        Labeled, queued and validation compounds are always excluded: a label is never
        asked for twice, so `exclude_labeled=False` is refused rather than ignored.
        """
        if not exclude_labeled:
            raise ValidationFailed("labeled compounds are never selected again", extra={"field": "exclude_labeled"})
        spec = PoolSpec(kind="smiles", smiles=tuple(pool)) if pool else PoolSpec()
        result = cycle_select(model=self.model, user=self.user, strategy=strategy, batch_size=batch_size,
                              params=params or None, pool=spec, preview=True)
        # add_to_queue scores its compounds the same way.
        self._selection = (result.strategy, result.params)
        return [{"compound_id": c.compound.pk, "smiles": c.compound.smiles, "registered": c.registered,
                 "priority_score": c.priority_score, "prediction": c.prediction, "uncertainty": c.uncertainty}
                for c in result.candidates]

    def add_to_queue(self, compound_ids: list[int] | list[str], selection_batch: int | None = None) -> int:
        """Open a cycle whose queue holds these compounds; returns how many were queued.

        `compound_ids`: registered ids, or SMILES (for candidates `select_samples` found in
        a pasted pool that are not registered yet: queuing registers them). Each item is
        scored by the model with the last `select_samples` strategy, so it says why it is
        there. `selection_batch` is the spec's argument: chemloop numbers batches itself
        (the cycle number), so a different number is refused rather than silently changed.
        """
        strategy, params = getattr(self, "_selection", ("uncertainty", {}))
        as_smiles = all(isinstance(c, str) for c in compound_ids)
        spec = (PoolSpec(kind="smiles", smiles=tuple(compound_ids)) if as_smiles
                else PoolSpec(kind="compounds", compound_ids=tuple(int(c) for c in compound_ids)))
        with transaction.atomic():  # a refused batch number leaves no cycle behind
            result = cycle_select(model=self.model, user=self.user, strategy=strategy, batch_size=len(compound_ids),
                                  params=params or None, pool=spec)
            cycle = result.cycle
            if selection_batch is not None and cycle is not None and cycle.cycle_number != selection_batch:
                raise Conflict(f"batch {selection_batch} was asked for, but this lineage's next batch is "
                               f"{cycle.cycle_number}", extra={"field": "selection_batch"})
        return len(result.candidates)

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
