"""Lock order of the queue writes: items (primary-key order) before cycle rows, everywhere.

Each test forces the interleaving that deadlocked (a hook parks one thread inside its
transaction until the other is provably waiting on a row lock), so it is deterministic,
not a race that may or may not happen. Each thread has its own database connection.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pytest
from django.db import connection

from config.exceptions import Conflict
from cycles import services as cycle_services
from cycles.models import ActiveLearningCycle, CycleStatus, Job, JobStatus
from cycles.services import retraining
from labeling import services
from labeling.models import AuditAction, AuditEvent, LabelQueueItem, QueueStatus
from tests.threads import run_concurrently

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _someone_waits_on_a_lock(timeout: float = 120.0) -> bool:
    """True once another transaction waits on a lock (pg_locks is live, not snapshotted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cur.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False


def _assert_counters_match_items() -> None:
    for cycle in ActiveLearningCycle.objects.all():
        skipped = cycle.items.filter(status=QueueStatus.SKIPPED).count()
        assert cycle.items_skipped == skipped, (cycle.cycle_number, cycle.items_skipped, skipped)


def _training_cycle(loop: dict[str, Any], rq_queue: Any) -> tuple[ActiveLearningCycle, Job]:
    cycle = cycle_services.cycle_select(model=loop["model"], user=loop["lead"], batch_size=24).cycle
    for item in LabelQueueItem.objects.filter(cycle=cycle).order_by("pk")[:10]:
        services.label_submit(item_id=item.pk, user=loop["scientist"], value=loop["truth"][item.compound_id])
    job = cycle_services.cycle_retrain_trigger(cycle_id=cycle.pk, user=loop["lead"])
    return cycle, job


def test_a_label_saved_while_the_retrain_finishes_does_not_deadlock(loop, rq_queue, monkeypatch):  # type: ignore[no-untyped-def]
    # label_submit locks its item, then bumps the cycle's counter; _finish used to lock the
    # cycle, then update the open items: a label in between deadlocked (one of the two died).
    cycle, job = _training_cycle(loop, rq_queue)
    item = LabelQueueItem.objects.filter(cycle=cycle, status=QueueStatus.PENDING).order_by("pk").first()
    real_parse = services.parse_measurement_value

    def parse_after_the_retrain_waits(*args: Any, **kwargs: Any) -> Any:
        # The item is locked here and the cycle counter not yet bumped.
        assert _someone_waits_on_a_lock(), "the retrain never reached the item locks"
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(services, "parse_measurement_value", parse_after_the_retrain_waits)
    errors = run_concurrently([
        lambda: services.label_submit(item_id=item.pk, user=loop["scientist"], value=loop["truth"][item.compound_id]),
        lambda: retraining.cycle_retrain_run(job_id=job.pk),
    ])[1]
    assert errors == []
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    item.refresh_from_db()
    assert item.status == QueueStatus.LABELED
    # The label came after the retrain read its labels: it counts for the carried-over cycle.
    cycle.refresh_from_db()
    successor = ActiveLearningCycle.objects.get(model=item.model, status=CycleStatus.LABELING)
    assert item.cycle_id == successor.pk
    assert cycle.items_labeled == 10 and successor.items_labeled == 1


def test_a_bulk_skip_while_the_retrain_finishes_does_not_deadlock(loop, rq_queue, monkeypatch):  # type: ignore[no-untyped-def]
    cycle, job = _training_cycle(loop, rq_queue)
    open_ids = list(LabelQueueItem.objects.filter(cycle=cycle, status=QueueStatus.PENDING).values_list("pk", flat=True))
    real_lock_cycles = services._lock_cycles

    def lock_cycles_after_the_retrain_waits(cycle_ids: set[Any]) -> None:
        # All the chunk's items are locked here, the cycle row not yet.
        assert _someone_waits_on_a_lock(), "the retrain never reached the item locks"
        real_lock_cycles(cycle_ids)

    monkeypatch.setattr(services, "_lock_cycles", lock_cycles_after_the_retrain_waits)
    outcomes: list[Any] = []
    errors = run_concurrently([
        lambda: outcomes.append(services.queue_items_skip(item_ids=open_ids, user=loop["lead"])),
        lambda: retraining.cycle_retrain_run(job_id=job.pk),
    ])[1]
    assert errors == []
    assert outcomes[0].done == len(open_ids)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert LabelQueueItem.objects.filter(pk__in=open_ids, status=QueueStatus.SKIPPED).count() == len(open_ids)
    assert AuditEvent.objects.filter(action=AuditAction.SKIP).count() == len(open_ids)
    _assert_counters_match_items()


def test_two_bulk_skips_over_two_cycles_in_opposite_orders_do_not_deadlock(loop, monkeypatch):  # type: ignore[no-untyped-def]
    # Each chunk bumped each cycle's counter as it met the cycle's first item: lead 1 held
    # cycle A and wanted B while lead 2 held B and wanted A.
    a = cycle_services.cycle_select(model=loop["model"], user=loop["lead"], batch_size=6).cycle
    b = cycle_services.cycle_select(model=loop["model"], user=loop["lead"], batch_size=6).cycle
    a_ids = list(LabelQueueItem.objects.filter(cycle=a).order_by("pk").values_list("pk", flat=True))
    b_ids = list(LabelQueueItem.objects.filter(cycle=b).order_by("pk").values_list("pk", flat=True))
    first = a_ids[:3] + b_ids[:3]
    second = b_ids[3:] + a_ids[3:]
    both_hold_a_cycle = threading.Barrier(2, timeout=5)
    real_check = services._check_may_label
    calls = threading.local()

    def check_then_meet(item: Any, user: Any) -> None:
        calls.n = getattr(calls, "n", 0) + 1
        if calls.n == 4:  # the first item of the second cycle: the first cycle's row is held
            # Broken after 5 s when the other lead waits for our locks: the correct order.
            with contextlib.suppress(threading.BrokenBarrierError):
                both_hold_a_cycle.wait()
        real_check(item, user)

    monkeypatch.setattr(services, "_check_may_label", check_then_meet)
    outcomes: list[Any] = []
    errors = run_concurrently([
        lambda: outcomes.append(services.queue_items_skip(item_ids=first, user=loop["lead"])),
        lambda: outcomes.append(services.queue_items_skip(item_ids=second, user=loop["lead"])),
    ])[1]
    assert errors == []
    assert sorted(o.done for o in outcomes) == [6, 6]
    assert LabelQueueItem.objects.filter(status=QueueStatus.SKIPPED).count() == 12
    _assert_counters_match_items()


def test_a_bulk_assign_over_an_item_claimed_meanwhile_reassigns_it(loop, django_user_model, monkeypatch):  # type: ignore[no-untyped-def]
    # The bulk's lock waited for the claim; PostgreSQL then returned the claimed row with
    # the joined assignee of the row it first read (none): AttributeError, a 500, and the
    # rest of the selection left undone.
    cycle = cycle_services.cycle_select(model=loop["model"], user=loop["lead"], batch_size=4).cycle
    ids = list(LabelQueueItem.objects.filter(cycle=cycle).values_list("pk", flat=True))
    other = django_user_model.objects.create_user(username="other")
    other.groups.set(loop["scientist"].groups.all())
    real_audit = services.audit
    claiming = threading.Event()
    claimed: list[Any] = []

    def audit_after_the_bulk_waits(action: str, **kwargs: Any) -> None:
        if action == AuditAction.CLAIM and not claiming.is_set():
            claiming.set()  # the claimed item is locked and saved, not yet committed
            assert _someone_waits_on_a_lock(), "the bulk assign never waited for the claim"
        real_audit(action, **kwargs)

    monkeypatch.setattr(services, "audit", audit_after_the_bulk_waits)
    outcomes: list[Any] = []

    def bulk() -> None:
        assert claiming.wait(60)
        outcomes.append(services.queue_items_assign(item_ids=ids, assignee_id=other.pk, user=loop["lead"]))

    errors = run_concurrently([lambda: claimed.append(services.queue_item_claim_next(user=loop["scientist"])), bulk])[1]
    assert errors == []
    assert outcomes[0].done == len(ids)
    item = LabelQueueItem.objects.get(pk=claimed[0].pk)
    assert item.assigned_to_id == other.pk and item.status == QueueStatus.PENDING
    event = AuditEvent.objects.get(item=item, action=AuditAction.ASSIGN)
    assert event.data["previous_username"] == loop["scientist"].username


def test_a_bulk_chunk_the_database_aborts_is_a_conflict_naming_what_was_done(loop, monkeypatch):  # type: ignore[no-untyped-def]
    # Whatever path still meets a bulk chunk in a lock conflict: the committed chunks are
    # whole (items, audit events, counters), the aborted one is undone, and the caller gets
    # a Conflict (409 / an error message) saying how many items changed, not a 500.
    monkeypatch.setattr(services, "BULK_CHUNK", 2)
    a = cycle_services.cycle_select(model=loop["model"], user=loop["lead"], batch_size=2).cycle
    b = cycle_services.cycle_select(model=loop["model"], user=loop["lead"], batch_size=2).cycle
    ids = [
        *LabelQueueItem.objects.filter(cycle=a).values_list("pk", flat=True),
        *LabelQueueItem.objects.filter(cycle=b).values_list("pk", flat=True),
    ]
    holding = threading.Event()
    release = threading.Event()

    def hold_cycle_b() -> None:
        from django.db import transaction

        with transaction.atomic():
            ActiveLearningCycle.objects.select_for_update().get(pk=b.pk)
            holding.set()
            release.wait(60)

    raised: list[Any] = []

    def bulk() -> None:
        assert holding.wait(60)
        try:
            with connection.cursor() as cur:
                cur.execute("SET lock_timeout = '300ms'")
            services.queue_items_skip(item_ids=ids, user=loop["lead"])
        except Conflict as exc:
            raised.append(exc)
        finally:
            release.set()

    errors = run_concurrently([hold_cycle_b, bulk])[1]
    assert errors == []
    assert raised and raised[0].extra == {"done": 2, "total": 4}, raised
    assert "2 of 4 items were changed" in raised[0].message and "Retry" in raised[0].message
    assert set(LabelQueueItem.objects.filter(status=QueueStatus.SKIPPED).values_list("cycle_id", flat=True)) == {a.pk}
    assert AuditEvent.objects.filter(action=AuditAction.SKIP).count() == 2
    _assert_counters_match_items()


def test_a_reset_that_waited_for_the_retrain_refuses_the_superseded_version(loop, rq_queue, monkeypatch):  # type: ignore[no-untyped-def]
    # The skipped item is not changed by the retrain, only locked: the reset's lock then
    # returned it with the model row read before the retrain committed (still active), and
    # the reset put it back to pending on the superseded version, an open item no queue serves.
    cycle, job = _training_cycle(loop, rq_queue)
    item = LabelQueueItem.objects.filter(cycle=cycle, status=QueueStatus.PENDING).order_by("pk").first()
    services.queue_item_skip(item_id=item.pk, user=loop["scientist"])
    real_activate = retraining.model_services.model_activate
    finishing = threading.Event()

    def activate_after_the_reset_waits(*args: Any, **kwargs: Any) -> Any:
        finishing.set()  # the retrain holds the replaced version's items here
        assert _someone_waits_on_a_lock(), "the reset never waited for the retrain"
        return real_activate(*args, **kwargs)

    monkeypatch.setattr(retraining.model_services, "model_activate", activate_after_the_reset_waits)
    refused: list[Any] = []

    def reset() -> None:
        assert finishing.wait(120)
        try:
            services.queue_item_reset(item_id=item.pk, user=loop["lead"])
        except Conflict as exc:
            refused.append(exc)

    errors = run_concurrently([lambda: retraining.cycle_retrain_run(job_id=job.pk), reset])[1]
    assert errors == []
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    item.refresh_from_db()
    assert item.status == QueueStatus.SKIPPED, "reset to pending on a superseded version"
    assert refused and "superseded" in refused[0].message
    _assert_counters_match_items()


def test_an_item_reset_after_the_retrain_rescored_gets_the_new_versions_scores(loop, rq_queue, monkeypatch):  # type: ignore[no-untyped-def]
    """The retrain re-scores the open items before its transaction; an item a lead reset in
    between moved to the new version with the replaced version's prediction and priority."""
    from mlmodels import services as model_services

    cycle, job = _training_cycle(loop, rq_queue)
    item = LabelQueueItem.objects.filter(cycle=cycle, status=QueueStatus.PENDING).order_by("pk").first()
    services.queue_item_skip(item_id=item.pk, user=loop["scientist"])
    real_rescore = retraining._rescore
    calls: list[list[int]] = []

    def rescore_then_a_reset(**kwargs: Any) -> Any:
        calls.append(list(kwargs["compound_ids"]))
        out = real_rescore(**kwargs)
        if len(calls) == 1:  # the lead resets the skipped item right after the re-scoring
            services.queue_item_reset(item_id=item.pk, user=loop["lead"])
        return out

    monkeypatch.setattr(retraining, "_rescore", rescore_then_a_reset)
    retraining.cycle_retrain_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING and item.model_id == job.result["model_id"]
    assert calls[1:] == [[item.compound_id]]  # scored again, alone
    fresh = model_services.model_score_compounds(model=item.model, compound_ids=[item.compound_id])
    assert item.prediction == pytest.approx(float(fresh.prediction[0]))
