"""Writes to the label queue: add, claim, label, skip, assign, reset, correct.

Every operation checks the actor's role here, so the HTML views, the API and the
admin enforce identical rules.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from compounds.models import LabelSource, Measurement
from compounds.services import label_provenance_check, parse_measurement_value
from config.db_errors import is_lock_conflict
from config.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from config.roles import LEAD, SCIENTIST, has_role
from labeling import selectors
from labeling.models import OPEN_STATUSES, AuditAction, AuditEvent, LabelQueueItem, QueueStatus
from labeling.selectors import QUEUE_LIST_DEFERRED, QUEUE_VERSION_KEY, SERVE_ORDER
from mlmodels.models import MLModel, ModelStatus

logger = logging.getLogger(__name__)

# Notes, skip reasons and correction reasons: what forms and API fields accept, checked again
# in the services so no caller can store more (the audit trail keeps a skip reason).
NOTES_MAX_LENGTH = 5000

# Sources a scientist may give; "imported" is reserved for file imports.
HUMAN_SOURCES = (LabelSource.EXPERIMENTAL, LabelSource.LITERATURE, LabelSource.EXPERT_ESTIMATE)


@dataclass(frozen=True)
class QueueEntry:
    """One selected compound with the model outputs that explain why it was picked."""

    compound_id: int
    priority_score: float
    prediction: float | None = None
    uncertainty: float | None = None
    applicability_distance: float | None = None
    probabilities: list[float] | None = None
    score_components: dict[str, Any] = field(default_factory=dict)


@dataclass
class BulkOutcome:
    """What a bulk action did: how many items changed, and why the others did not (each
    service refusal's own message, counted), so every caller reports the real reasons."""

    total: int = 0
    done: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def add(self, error: Conflict | NotFound | None = None) -> None:
        self.total += 1
        if error is None:
            self.done += 1
        else:
            self.refused[error.message] = self.refused.get(error.message, 0) + 1

    def refusals_text(self) -> str:
        """ "2 left unchanged: <reason>; 1 left unchanged: <reason>", most frequent first."""
        groups = sorted(self.refused.items(), key=lambda kv: -kv[1])
        return "; ".join(f"{n} left unchanged: {reason.rstrip('.')}" for reason, n in groups)


BULK_CHUNK = 200


def _bulk(item_ids: Iterable[Any], action: Any, *, counts: bool = False) -> BulkOutcome:
    """Run a one-item action on every item, BULK_CHUNK items to a transaction.

    Each chunk's items are locked with one query (in primary-key order, the order every
    locker uses) instead of one joined SELECT … FOR UPDATE per item, and committed
    together; each item's action runs in a savepoint, so a refused item undoes only
    itself. A lead's "select all" over thousands of items took ~8 ms an item, mostly
    planning that per-item join and one commit per item.

    `counts`: the action changes its cycle's counters. The chunk's cycle rows are then
    locked next, in primary-key order, before any action: bumped one by one as the
    items came, two leads' chunks over items of two cycles each held one cycle and
    waited for the other (a deadlock). Items before cycles is the order of every queue
    write, the retrain's included.

    A chunk PostgreSQL still aborts (a deadlock or lock timeout with some path not
    written here) is undone whole, and the caller gets a Conflict saying how many items
    the committed chunks changed and that a retry does the rest, not a bare error
    after half the selection.
    """
    outcome = BulkOutcome()
    pending = list(item_ids)
    for start in range(0, len(pending), BULK_CHUNK):
        chunk = pending[start : start + BULK_CHUNK]
        done = BulkOutcome()
        try:
            with transaction.atomic():
                items = _locked_items(chunk)
                if counts:
                    _lock_cycles({item.cycle_id for item in items.values() if item.cycle_id})
                for item_id in chunk:
                    item = items.get(_as_uuid(item_id))
                    if item is None:
                        done.add(NotFound("No such queue item."))
                        continue
                    try:
                        with transaction.atomic():
                            action(item)
                    except (Conflict, NotFound) as exc:
                        done.add(exc)
                    else:
                        done.add()
        except OperationalError as exc:
            if not is_lock_conflict(exc):
                raise
            logger.warning("bulk queue action aborted by the database after %d items", outcome.done, exc_info=True)
            refusals = f" ({outcome.refusals_text()})" if outcome.refused else ""
            raise Conflict(
                f"{outcome.done} of {len(pending)} items were changed{refusals}; the last {len(pending) - start} were "
                "left unchanged because another change to the same items was running at that moment. Retry to do "
                "the rest.",
                extra={"done": outcome.done, "total": len(pending)},
            ) from exc
        outcome.total += done.total
        outcome.done += done.done
        for reason, n in done.refused.items():
            outcome.refused[reason] = outcome.refused.get(reason, 0) + n
    return outcome


def _lock_cycles(cycle_ids: set[Any]) -> None:
    cycle_model = LabelQueueItem._meta.get_field("cycle").related_model
    list(cycle_model.objects.select_for_update().filter(pk__in=cycle_ids).order_by("pk").values_list("pk", flat=True))


def _require_scientist(user: Any) -> None:
    if not has_role(user, SCIENTIST):
        raise PermissionDenied("Labeling needs the scientist or lead role.")


def _require_lead(user: Any) -> None:
    if not has_role(user, LEAD):
        raise PermissionDenied("Only leads can do this.")


def queue_changed() -> None:
    """Make every cached queue page stale once the current transaction commits.

    Queue pages are cached per queue version (labeling.views.queue); every service that
    changes queue items calls this, most of them through `audit`.
    """
    transaction.on_commit(_bump_queue_version)


def _bump_queue_version() -> None:
    try:
        try:
            cache.incr(QUEUE_VERSION_KEY)
        except ValueError:
            # Evicted or never set: a clock-based start never reuses a version whose pages
            # may still sit in the cache.
            cache.set(QUEUE_VERSION_KEY, time.time_ns(), timeout=None)
    except Exception:  # the write is committed; a cache outage must not undo its answer
        # Cached pages expire after QUEUE_PAGE_CACHE_SECONDS, so a missed bump is stale
        # for that long at most.
        logger.warning("queue cache version not bumped (cache unreachable)", exc_info=True)


def audit(action: str, *, actor: Any, item: LabelQueueItem | None = None, cycle: Any = None, **data: Any) -> None:
    queue_changed()
    AuditEvent.objects.create(
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        item=item,
        cycle=cycle if cycle is not None else (item.cycle if item is not None else None),
        data=data,
    )


def _as_uuid(item_id: Any) -> uuid.UUID | None:
    try:
        return item_id if isinstance(item_id, uuid.UUID) else uuid.UUID(str(item_id))
    except (ValueError, TypeError, AttributeError):
        return None


def _lock_query() -> QuerySet[LabelQueueItem]:
    # Joined as the queue selector joins them, so an API can answer with the item
    # the service returns instead of reading it again.
    return (
        LabelQueueItem.objects.select_for_update(of=("self",))
        .select_related("compound", "model__assay", "cycle", "assigned_to", "labeled_by")
        .defer(*QUEUE_LIST_DEFERRED)
    )


# The foreign keys `_lock_query` joins, as (field, cached relation) pairs.
_LOCK_JOINS = (("model_id", "model"), ("cycle_id", "cycle"), ("assigned_to_id", "assigned_to"), ("labeled_by_id", "labeled_by"))


def _fresh_joins(item: LabelQueueItem) -> LabelQueueItem:
    """Drop joined relations that no longer match the locked row's foreign keys.

    A lock that waited for another transaction returns that transaction's version of the
    item row (PostgreSQL re-checks only the locked table), but the joined rows are the
    ones the statement first read: an item claimed meanwhile came back with
    assigned_to_id set and assigned_to None (a bulk assign raised AttributeError, a 500
    that also left the rest of the action undone), one moved by a retrain with its old
    model. Dropped relations load again on use; there is nothing to drop, and no extra
    query, unless the lock waited on a change of that key.
    """
    cache = item._state.fields_cache
    for fk, name in _LOCK_JOINS:
        if name in cache and getattr(cache[name], "pk", None) != getattr(item, fk):
            del cache[name]
    return item


def _locked_item(item_id: Any) -> LabelQueueItem:
    pk = _as_uuid(item_id)
    # No ORDER BY (the model's default queue order): one row by primary key; compiling
    # and sorting by the queue order cost ~0.17 ms of CPU a label (2 %) for nothing.
    item = next(iter(_lock_query().filter(pk=pk).order_by()), None) if pk is not None else None
    if item is None:
        raise NotFound("No such queue item.")
    return _fresh_joins(item)


def _locked_items(item_ids: Iterable[Any]) -> dict[uuid.UUID, LabelQueueItem]:
    """The existing items among `item_ids`, locked by one query, by primary key."""
    pks = {pk for pk in map(_as_uuid, item_ids) if pk is not None}
    items = {item.pk: _fresh_joins(item) for item in _lock_query().filter(pk__in=pks).order_by("pk")}
    _fresh_models(items.values())
    return items


def _fresh_models(items: Iterable[LabelQueueItem]) -> None:
    """Read the items' model versions again, after their locks (one query).

    A lock that waited for a retrain's finish returns an unchanged skipped item with the
    model row as it was before that retrain committed: still active. A lead's reset then
    put the item back to pending on a version the retrain had just superseded, an open
    item no queue serves. The retrain locks these items too, so a read after our lock
    sees its outcome.
    """
    items = list(items)
    fresh = MLModel.objects.select_related("assay").in_bulk({item.model_id for item in items})
    for item in items:
        item.model = fresh[item.model_id]


def queue_items_add(
    *,
    model: Any,
    cycle: Any,
    selection_batch: int,
    strategy: str,
    entries: Sequence[QueueEntry],
) -> list[LabelQueueItem]:
    """Insert the selected compounds; a compound already open for the model is a conflict."""
    items = [
        LabelQueueItem(
            compound_id=e.compound_id,
            model=model,
            cycle=cycle,
            selection_strategy=strategy,
            selection_batch=selection_batch,
            priority_score=e.priority_score,
            prediction=e.prediction,
            uncertainty=e.uncertainty,
            applicability_distance=e.applicability_distance,
            probabilities=e.probabilities,
            score_components=e.score_components,
        )
        for e in entries
    ]
    try:
        with transaction.atomic():
            LabelQueueItem.objects.bulk_create(items, batch_size=1000)
            queue_changed()
    except IntegrityError as exc:
        # The unique constraints are the last line of defence against a concurrent selection.
        raise Conflict("Some of these compounds were queued for this model at the same time; retry.") from exc
    return items


def queue_item_claim_next(*, user: Any, model_id: int | None = None) -> LabelQueueItem | None:
    """Give the scientist their next item: their own open work first, then the next
    unassigned one in serving order (earlier batches first, each best first: SERVE_ORDER).

    `skip_locked` makes concurrent callers pass over rows another transaction is
    claiming, so two scientists never receive the same item.
    """
    _require_scientist(user)
    with transaction.atomic():
        qs = LabelQueueItem.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            status__in=OPEN_STATUSES, model__status="active"
        )
        if model_id is not None:
            qs = qs.filter(model_id=model_id)
        qs = qs.filter(Q(assigned_to=user) | Q(assigned_to__isnull=True))
        item = (
            qs.annotate(
                mine=Case(
                    When(assigned_to=user, status=QueueStatus.IN_PROGRESS, then=Value(0)),
                    When(assigned_to=user, then=Value(1)),
                    default=Value(2),
                    output_field=IntegerField(),
                )
            )
            .order_by("mine", *SERVE_ORDER)
            .first()
        )
        if item is None:
            return None
        if item.status != QueueStatus.IN_PROGRESS or item.assigned_to_id != user.pk:
            item.status = QueueStatus.IN_PROGRESS
            if item.assigned_to_id is None:
                item.assigned_to = user
                item.assigned_at = timezone.now()
            item.save(update_fields=["status", "assigned_to", "assigned_at", "updated_at"])
            audit(AuditAction.CLAIM, actor=user, item=item)
    return item


def _check_may_label(item: LabelQueueItem, user: Any) -> None:
    _require_scientist(user)
    if item.assigned_to_id not in (None, user.pk) and not has_role(user, LEAD):
        raise PermissionDenied("This item is assigned to someone else.")


def label_submit(
    *,
    item_id: Any,
    user: Any,
    value: Any,
    source: str = LabelSource.EXPERIMENTAL,
    confidence: str = "",
    notes: str = "",
) -> LabelQueueItem:
    """Record a label and its Measurement; a second label is refused, never overwritten."""
    label_provenance_check(source=source, confidence=confidence, sources=HUMAN_SOURCES)
    notes = (notes or "")[:NOTES_MAX_LENGTH]
    with transaction.atomic():
        item = _locked_item(item_id)
        _require_scientist(user)
        # State first: "someone else labeled it" is the answer a racing scientist needs.
        if item.status in (QueueStatus.LABELED, QueueStatus.ARCHIVED):
            who = item.labeled_by.username if item.labeled_by else "someone"
            raise Conflict(f"This item was already labeled by {who}.", extra={"status": item.status})
        if item.status == QueueStatus.SKIPPED:
            raise Conflict(
                "This item was skipped; the scientist who skipped it can undo the skip, or a lead can reset it "
                "to pending.",
                extra={"status": item.status},
            )
        _check_may_label(item, user)
        assay = item.model.assay
        number = parse_measurement_value(assay, value)
        now = timezone.now()
        Measurement.objects.create(
            compound_id=item.compound_id,
            assay=assay,
            value=number,
            source=source,
            confidence=confidence,
            notes=notes,
            created_by=user,
            queue_item=item,
        )
        item.status = QueueStatus.LABELED
        item.label = number
        item.label_source = source
        item.label_confidence = confidence
        item.notes = notes
        item.labeled_at = now
        item.labeled_by = user
        if item.assigned_to_id is None:
            item.assigned_to = user
            item.assigned_at = now
        item.save(update_fields=[
            "status", "label", "label_source", "label_confidence", "notes", "labeled_at", "labeled_by",
            "assigned_to", "assigned_at", "updated_at",
        ])
        if item.cycle_id:
            type(item.cycle).objects.filter(pk=item.cycle_id).update(items_labeled=F("items_labeled") + 1)
        audit(AuditAction.LABEL, actor=user, item=item, value=number, source=source, confidence=confidence)
    return item


def label_correct(*, item_id: Any, user: Any, value: Any, notes: str = "") -> LabelQueueItem:
    """Correct a stored label; the old value and the reason stay in the audit history.

    A lead corrects any label. The scientist who gave a label corrects it while it is
    still `labeled` on the active version, i.e. before a retrain has learned it: a
    typo is theirs to fix, a model's training data is the lead's.
    """
    _require_scientist(user)
    with transaction.atomic():
        item = _locked_item(item_id)
        if item.status not in (QueueStatus.LABELED, QueueStatus.ARCHIVED):
            raise Conflict("Only labeled items can be corrected.", extra={"status": item.status})
        if not selectors.label_correct_allowed(item=item, user=user):
            raise PermissionDenied(
                "Only the scientist who labeled it or a lead can correct this label, and the labeler only "
                "until a retrain has learned it."
            )
        if MLModel.objects.filter(name=item.model.name, status=ModelStatus.TRAINING).exists():
            # The running retrain read its labels when it started: a correction now would be
            # neither in the new version nor counted as new against it.
            raise Conflict(
                f"{item.model.name} is being retrained right now; correct the label when the retrain has "
                "finished (it will count toward the next one).",
                extra={"status": item.status},
            )
        number = parse_measurement_value(item.model.assay, value)
        if number == item.label:
            raise ValidationFailed(
                f"the label is already {item.model.assay.format_value(number)}; nothing to correct",
                extra={"field": "value"},
            )
        if not (notes or "").strip():
            # A changed label without a reason is an audit trail nobody can follow.
            raise ValidationFailed("say why the label changed", extra={"field": "notes"})
        old = item.label
        item.label = number
        # The labeler's notes stay; the reason for the correction goes into the history.
        item.save(update_fields=["label", "updated_at"])
        Measurement.objects.filter(queue_item=item).update(value=number)
        audit(AuditAction.CORRECT, actor=user, item=item, old_value=old, new_value=number, notes=(notes or "")[:NOTES_MAX_LENGTH])
    return item


def queue_item_skip(*, item_id: Any, user: Any, reason: str = "") -> LabelQueueItem:
    reason = reason or ""
    if len(reason) > NOTES_MAX_LENGTH:
        # Refused, not cut: the API refuses it too, and a silently shortened reason in the
        # audit trail would read as what the scientist wrote.
        raise ValidationFailed(
            f"the reason is {len(reason):,} characters long; at most {NOTES_MAX_LENGTH:,} are kept",
            extra={"field": "reason"},
        )
    with transaction.atomic():
        item = _locked_item(item_id)
        _require_scientist(user)
        return _skip(item, user, reason)


def _skip(item: LabelQueueItem, user: Any, reason: str) -> LabelQueueItem:
    """Skip a locked item (its transaction is the caller's)."""
    if item.status not in OPEN_STATUSES:
        raise Conflict(f"Only open (pending or claimed) items can be skipped (this one is {item.status}).", extra={"status": item.status})
    _check_may_label(item, user)
    item.status = QueueStatus.SKIPPED
    if reason:
        item.notes = reason
    item.save(update_fields=["status", "notes", "updated_at"])
    if item.cycle_id:
        type(item.cycle).objects.filter(pk=item.cycle_id).update(items_skipped=F("items_skipped") + 1)
    audit(AuditAction.SKIP, actor=user, item=item, reason=reason)
    return item


def queue_items_skip(*, item_ids: Iterable[Any], user: Any) -> BulkOutcome:
    """Bulk skip (lead): open items are skipped, the rest are left alone with their reason."""
    _require_lead(user)
    return _bulk(item_ids, lambda item: _skip(item, user, ""), counts=True)


def queue_item_assign(*, item_id: Any, assignee_id: int | None, user: Any) -> LabelQueueItem:
    """Assign an open item to a scientist (or unassign with None). Leads only."""
    _require_lead(user)
    assignee = _assignee(assignee_id)
    with transaction.atomic():
        return _assign_locked(_locked_item(item_id), assignee, user)


def _assignee(assignee_id: int | None) -> Any:
    """The active scientist (or lead) to assign to, None to unassign; refused otherwise."""
    if assignee_id is None:
        return None
    assignee = get_user_model().objects.filter(pk=assignee_id, is_active=True).first()
    if assignee is None:
        raise ValidationFailed("No such active user.", extra={"field": "user_id"})
    if not has_role(assignee, SCIENTIST):
        raise ValidationFailed(f"{assignee.username} cannot label (needs the scientist or lead role).", extra={"field": "user_id"})
    return assignee


def _assign_locked(item: LabelQueueItem, assignee: Any, user: Any) -> LabelQueueItem:
    """Assign a locked item (its transaction is the caller's)."""
    if item.status not in OPEN_STATUSES:
        raise Conflict(f"Only open items can be assigned (this one is {item.status}).", extra={"status": item.status})
    previous = item.assigned_to_id
    if previous == (assignee.pk if assignee else None):
        return item  # already so: no write, no audit event that says nothing happened
    previous_username = item.assigned_to.username if item.assigned_to_id else None
    item.assigned_to = assignee
    item.assigned_at = timezone.now() if assignee else None
    if item.status == QueueStatus.IN_PROGRESS and previous != (assignee.pk if assignee else None):
        # A reassigned item starts fresh for its new owner.
        item.status = QueueStatus.PENDING
    item.save(update_fields=["assigned_to", "assigned_at", "status", "updated_at"])
    audit(
        AuditAction.ASSIGN if assignee else AuditAction.UNASSIGN,
        actor=user,
        item=item,
        previous=previous,
        previous_username=previous_username,
        assignee=assignee.pk if assignee else None,
        assignee_username=assignee.username if assignee else None,
    )
    return item


def queue_items_assign(*, item_ids: Iterable[Any], assignee_id: int | None, user: Any) -> BulkOutcome:
    _require_lead(user)
    assignee = _assignee(assignee_id)  # checked once, not once per item
    return _bulk(item_ids, lambda item: _assign_locked(item, assignee, user))


def queue_item_reset(*, item_id: Any, user: Any) -> LabelQueueItem:
    """Return a skipped or stuck in-progress item to the pending queue.

    Leads reset any; the scientist who skipped an item may undo their own skip (a stray
    S), while its version is active.
    """
    _require_scientist(user)
    with transaction.atomic():
        item = _locked_item(item_id)
        _fresh_models([item])
        return _reset(item, user)


def _reset(item: LabelQueueItem, user: Any) -> LabelQueueItem:
    """Reset a locked item (its transaction is the caller's)."""
    if item.status not in (QueueStatus.SKIPPED, QueueStatus.IN_PROGRESS):
        raise Conflict(f"Only skipped or in-progress items can be reset (this one is {item.status}).")
    if not has_role(user, LEAD) and not selectors.queue_item_unskip_allowed(item=item, user=user):
        raise PermissionDenied("Only the scientist who skipped it or a lead can put this item back in the queue.")
    if item.model.status != ModelStatus.ACTIVE:
        # Its prediction and priority are an old version's; the live queue is the active one's.
        raise Conflict(
            f"This item belongs to {item.model}, which is {item.model.status}; select the compound again "
            "with the active version.",
            extra={"status": item.status},
        )
    was_skipped = item.status == QueueStatus.SKIPPED
    # The skip's reason would otherwise sit in the labeling form's notes as if it were
    # a note on the label; the audit trail keeps it (the skip event and this one).
    skip_reason = item.notes if was_skipped else ""
    item.status = QueueStatus.PENDING
    if was_skipped:
        item.notes = ""
    item.save(update_fields=["status", "notes", "updated_at"])
    if was_skipped and item.cycle_id:
        type(item.cycle).objects.filter(pk=item.cycle_id, items_skipped__gt=0).update(
            items_skipped=F("items_skipped") - 1
        )
    audit(AuditAction.RESET, actor=user, item=item, **({"skip_reason": skip_reason} if skip_reason else {}))
    return item


def queue_items_reset(*, item_ids: Iterable[Any], user: Any) -> BulkOutcome:
    _require_lead(user)
    return _bulk(item_ids, lambda item: _reset(item, user), counts=True)
