"""Reads of the label queue."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from django.core.cache import cache
from django.db.models import Q, QuerySet

from compounds.models import Assay
from config.exceptions import NotFound
from config.roles import LEAD, SCIENTIST, has_role
from labeling.models import OPEN_STATUSES, AuditAction, AuditEvent, LabelQueueItem, QueueStatus
from mlmodels.models import ModelStatus

# "priority" is the order work is served in (claim-next, Next, the queue's default):
# batches in the order they were selected, each best first. Strategies score on scales
# that do not compare (an uncertainty cycle's std ~0.3–0.5, a random cycle's uniform
# 0–1), so ranking one batch's scores against another's would serve a later random
# batch before an earlier uncertainty one. "-priority" is that order reversed.
SERVE_ORDER = ("selection_batch", "-priority_score", "created_at", "id")
ORDERINGS = {
    "priority": SERVE_ORDER,
    "-priority": ("-selection_batch", "priority_score", "-created_at", "-id"),
    "uncertainty": ("-uncertainty", "created_at"),
    "-uncertainty": ("uncertainty", "created_at"),
    "created": ("created_at", "id"),
    "-created": ("-created_at", "id"),
    "prediction": ("-prediction", "created_at"),
    "-prediction": ("prediction", "created_at"),
}


# The compound's stored vectors are ~1 kB a row and no list shows them (nor the
# substructure screen or the prior's columns); nor the JSON of models and cycles.
QUEUE_LIST_DEFERRED = (
    "compound__fingerprint", "compound__feature_vector", "compound__pattern_fp", "compound__prior_columns",
    "model__metrics", "model__hyperparameters", "model__featurizer", "cycle__metrics_before",
    "cycle__metrics_after", "cycle__strategy_params",
)


def queue_items_list(
    *,
    status: str | None = None,
    assigned_to: int | str | None = None,
    model_id: int | None = None,
    cycle_id: Any = None,
    ordering: str = "priority",
) -> QuerySet[LabelQueueItem]:
    """The queue with its usual filters; related rows joined so a page costs one query.

    `assigned_to` is a user id, "none" (unassigned) or None (anyone).
    """
    qs = LabelQueueItem.objects.select_related(
        "compound", "model__assay", "assigned_to", "labeled_by", "cycle"
    ).defer(*QUEUE_LIST_DEFERRED)
    if status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if model_id:
        qs = qs.filter(model_id=model_id)
    qs = _narrowed(qs, assigned_to=assigned_to, cycle_id=cycle_id)
    return qs.order_by(*ORDERINGS.get(ordering, ORDERINGS["priority"]))


def _narrowed(qs: QuerySet[LabelQueueItem], *, assigned_to: int | str | None, cycle_id: Any) -> QuerySet[LabelQueueItem]:
    """The assignee and cycle filters, shared by the list and its count badges."""
    if assigned_to == "none":
        qs = qs.filter(assigned_to__isnull=True)
    elif assigned_to not in (None, ""):
        qs = qs.filter(assigned_to_id=assigned_to)
    if cycle_id:
        qs = qs.filter(cycle_id=cycle_id)
    return qs


def queue_pending_items(*, user: Any = None, model_id: int | None = None, limit: int = 20) -> list[LabelQueueItem]:
    """The spec's get_pending_items: open items (for a user: theirs and unassigned), best first."""
    qs = queue_items_list(status="open", model_id=model_id)
    if user is not None:
        qs = qs.filter(Q(assigned_to=user) | Q(assigned_to__isnull=True))
    return list(qs[:limit])


def queue_next_item(*, after: LabelQueueItem, user: Any = None, model_id: int | None = None) -> LabelQueueItem | None:
    """The open item that follows `after` in serving order (SERVE_ORDER; for a user:
    theirs or unassigned), wrapping round to the top at the end; never `after` itself.

    "Next" walks down the queue this way: taking the best *other* item instead would
    bounce between two items whenever the user holds a claimed item near the top.
    """
    qs = queue_items_list(status="open", model_id=model_id).exclude(pk=after.pk)
    if user is not None:
        qs = qs.filter(Q(assigned_to=user) | Q(assigned_to__isnull=True))
    b, p, c = after.selection_batch, after.priority_score, after.created_at
    later = qs.filter(
        Q(selection_batch__gt=b)
        | Q(selection_batch=b, priority_score__lt=p)
        | Q(selection_batch=b, priority_score=p, created_at__gt=c)
        | Q(selection_batch=b, priority_score=p, created_at=c, id__gt=after.pk)
    )
    return later.first() or qs.first()


def label_correct_allowed(*, item: LabelQueueItem, user: Any) -> bool:
    """May `user` correct the item's label? Leads always (labeled or archived); the
    scientist who labeled it while it is `labeled` on the active version, i.e. before a
    retrain has learned it (labeling.services.label_correct enforces this)."""
    if item.label is None or item.status not in (QueueStatus.LABELED, QueueStatus.ARCHIVED):
        return False
    if has_role(user, LEAD):
        return True
    return (
        has_role(user, SCIENTIST)
        and item.labeled_by_id == user.pk
        and item.status == QueueStatus.LABELED
        and item.model.status == ModelStatus.ACTIVE
    )


def queue_item_unskip_allowed(*, item: LabelQueueItem, user: Any) -> bool:
    """May `user` undo this skip? The scientist whose skip it was (its latest skip event),
    while the item's version is active; leads reset any skipped item anyway."""
    if item.status != QueueStatus.SKIPPED or not has_role(user, SCIENTIST):
        return False
    if item.model.status != ModelStatus.ACTIVE:
        return False
    skip = item.events.filter(action=AuditAction.SKIP).order_by("-created_at", "-id").first()
    return skip is not None and skip.actor_id == user.pk


def queue_item_get(*, item_id: Any) -> LabelQueueItem:
    try:
        pk = item_id if isinstance(item_id, uuid.UUID) else uuid.UUID(str(item_id))
        return queue_items_list().get(pk=pk)
    except (LabelQueueItem.DoesNotExist, ValueError, TypeError, AttributeError) as exc:
        raise NotFound("No such queue item.") from exc


def queue_item_events(*, item: LabelQueueItem) -> QuerySet[AuditEvent]:
    return item.events.select_related("actor").order_by("-created_at", "-id")


# Cache key of the queue's version: services bump it after every change to queue items.
QUEUE_VERSION_KEY = "labeling:queue-version"


def queue_cache_version() -> int:
    """The current queue version; cached queue pages of another version are never served."""
    return cache.get_or_set(QUEUE_VERSION_KEY, time.time_ns(), timeout=None)


def queue_counts(
    *,
    model_id: int | None = None,
    lineage: str | None = None,
    assigned_to: int | str | None = None,
    cycle_id: Any = None,
) -> dict[str, int]:
    """Items by status, for one model version, one lineage (every version of a name) or
    all; `assigned_to` and `cycle_id` narrow them as in queue_items_list, so the queue
    page's badges count what its filters show."""
    from django.db.models import Count

    qs = LabelQueueItem.objects.all()
    if model_id:
        qs = qs.filter(model_id=model_id)
    qs = _narrowed(qs, assigned_to=assigned_to, cycle_id=cycle_id)
    if lineage:
        qs = qs.filter(model__name=lineage)
    counts = {s: 0 for s in QueueStatus.values}
    for row in qs.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


# --- Reads for the API ---------------------------------------------------------------


def queue_item_detail(*, item_id: Any, similar_k: int = 5) -> dict[str, Any]:
    """An item with everything a labeler needs: history and similar measured compounds
    with their labels in the item's assay."""
    from compounds.models import Compound
    from compounds.selectors import compound_labels, compound_similar

    item = queue_item_get(item_id=item_id)
    assay_id = item.model.assay_id
    measured = Compound.objects.filter(measurements__assay_id=assay_id).distinct()
    similar = compound_similar(compound=item.compound, queryset=measured, k=similar_k)
    labels = compound_labels(compound_ids=[s.compound.pk for s in similar], assay_id=assay_id)
    return {
        "item": item,
        "events": list(queue_item_events(item=item)),
        "similar": [
            {"compound": s.compound, "similarity": s.similarity, "labels": labels.get(s.compound.pk, [])}
            for s in similar
        ],
    }


EXPORT_COLUMNS = (
    "item_id", "compound_id", "compound_name", "smiles", "inchikey", "model", "version", "cycle", "selection_batch",
    "strategy", "priority_score", "prediction", "uncertainty", "applicability_distance", "status", "assigned_to",
    "label", "label_source", "label_confidence", "labeled_by", "labeled_at", "notes", "predicted_probability",
)


def queue_export_table(*, items: QuerySet[LabelQueueItem]) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """Header and rows of the queue's CSV export (raw values; the caller escapes them).

    Classification items give `label` and `prediction` as class names (the stored values
    are indexes, meaningless outside the app) and `predicted_probability`; when every item
    belongs to one classification assay, a `probability[<class>]` column per class follows.
    """
    assays = list(Assay.objects.filter(pk__in=items.values("model__assay_id")).distinct()[:2])
    classes = assays[0].classes if len(assays) == 1 and assays[0].is_classification else []
    header = [*EXPORT_COLUMNS, *(f"probability[{name}]" for name in classes)]
    return header, _queue_export_rows(items, len(classes))


def _queue_export_rows(items: QuerySet[LabelQueueItem], n_classes: int) -> Iterator[tuple[Any, ...]]:
    for i in items.iterator(chunk_size=2000):
        assay = i.model.assay
        prediction, label, predicted_p = i.prediction, i.label, None
        probabilities = list(i.probabilities or [])
        if assay.is_classification:
            # The probability of the class in the prediction column, so the two always agree.
            if prediction is not None and 0 <= int(prediction) < len(probabilities):
                predicted_p = probabilities[int(prediction)]
            prediction = "" if prediction is None else assay.format_value(prediction)
            label = "" if label is None else assay.format_value(label)
        per_class = [*probabilities, *[None] * n_classes][:n_classes] if n_classes else []
        yield (
            i.pk, i.compound_id, i.compound.name, i.compound.canonical_smiles, i.compound.inchikey, i.model.name,
            i.model.version, i.cycle.cycle_number if i.cycle else "", i.selection_batch, i.selection_strategy,
            i.priority_score, prediction, i.uncertainty, i.applicability_distance, i.status,
            i.assigned_to.username if i.assigned_to else "", label, i.label_source, i.label_confidence,
            i.labeled_by.username if i.labeled_by else "", i.labeled_at.isoformat() if i.labeled_at else "", i.notes,
            predicted_p, *per_class,
        )
