"""Concurrency guarantees, each with separate database connections (threads)."""


import pytest
from django.contrib.auth.models import Group

from config.exceptions import Conflict
from cycles import services as cycle_services
from cycles.models import ActiveLearningCycle, Job
from labeling import services
from labeling.models import LabelQueueItem
from tests.factories import LabelQueueItemFactory, MLModelFactory
from tests.threads import run_concurrently

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _scientists(django_user_model, n):  # type: ignore[no-untyped-def]
    group = Group.objects.get_or_create(name="scientist")[0]
    users = []
    for i in range(n):
        u = django_user_model.objects.create_user(username=f"s{i}")
        u.groups.add(group)
        users.append(u)
    return users


def test_fifty_concurrent_claims_get_distinct_items_or_a_clean_empty(django_user_model):  # type: ignore[no-untyped-def]
    users = _scientists(django_user_model, 50)
    model = MLModelFactory()
    for _ in range(40):  # fewer items than callers: ten must get a clean "empty"
        LabelQueueItemFactory(model=model)
    results, errors = run_concurrently([lambda u=u: services.queue_item_claim_next(user=u) for u in users])
    assert errors == []
    claimed = [r.pk for r in results if r is not None]
    assert len(claimed) == 40
    assert len(set(claimed)) == 40
    assert results.count(None) == 10


def test_two_concurrent_labels_for_one_item_exactly_one_wins(django_user_model):  # type: ignore[no-untyped-def]
    a, b = _scientists(django_user_model, 2)
    item = LabelQueueItemFactory()
    results, errors = run_concurrently(
        [
            lambda: services.label_submit(item_id=item.pk, user=a, value=1.0),
            lambda: services.label_submit(item_id=item.pk, user=b, value=2.0),
        ]
    )
    assert len(results) == 1
    assert len(errors) == 1 and isinstance(errors[0], Conflict)
    item.refresh_from_db()
    assert item.label == results[0].label
    assert item.measurements.count() == 1


def test_two_concurrent_retrain_triggers_enqueue_exactly_one_job(loop, rq_queue):  # type: ignore[no-untyped-def]
    cycle = cycle_services.cycle_select(model=loop["model"], user=loop["lead"], batch_size=12).cycle
    for item in LabelQueueItem.objects.filter(cycle=cycle)[:10]:
        services.label_submit(item_id=item.pk, user=loop["scientist"], value=loop["truth"][item.compound_id])
    results, errors = run_concurrently(
        [lambda: cycle_services.cycle_retrain_trigger(cycle_id=cycle.pk, user=loop["lead"]) for _ in range(2)]
    )
    assert len(results) == 1
    assert len(errors) == 1 and isinstance(errors[0], Conflict)
    assert Job.objects.count() == 1
    assert len(rq_queue) == 1


def test_two_concurrent_selections_never_duplicate_queue_rows(loop):  # type: ignore[no-untyped-def]
    results, errors = run_concurrently(
        [
            lambda: cycle_services.cycle_select(model=loop["model"], user=loop["lead"], strategy="uncertainty", batch_size=20)
            for _ in range(2)
        ]
    )
    # Either both succeed with disjoint batches, or the loser gets a clean conflict.
    assert all(isinstance(e, Conflict) for e in errors), errors  # a 409, not a 400 or a 500
    assert len(results) + len(errors) == 2 and results
    rows = list(LabelQueueItem.objects.values_list("compound_id", flat=True))
    assert len(rows) == len(set(rows)) == 20 * len(results)
    numbers = sorted(ActiveLearningCycle.objects.values_list("cycle_number", flat=True))
    assert numbers == list(range(1, len(results) + 1))
