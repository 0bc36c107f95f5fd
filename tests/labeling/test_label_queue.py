import threading

import pytest
from django.db import connection

from compounds.models import Measurement, TaskType
from config.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from labeling import selectors, services
from labeling.models import AuditEvent, LabelQueueItem, QueueStatus
from tests.factories import AssayFactory, CompoundFactory, LabelQueueItemFactory, MLModelFactory

pytestmark = pytest.mark.django_db


def test_claim_next_gives_the_highest_priority_unassigned_item(scientist):  # type: ignore[no-untyped-def]
    model = MLModelFactory()
    low = LabelQueueItemFactory(model=model, priority_score=1.0)
    high = LabelQueueItemFactory(model=model, priority_score=9.0)

    item = services.queue_item_claim_next(user=scientist)

    assert item.pk == high.pk
    high.refresh_from_db()
    assert high.status == QueueStatus.IN_PROGRESS
    assert high.assigned_to == scientist
    low.refresh_from_db()
    assert low.status == QueueStatus.PENDING


def test_claim_next_resumes_own_work_before_new_items(scientist):  # type: ignore[no-untyped-def]
    model = MLModelFactory()
    LabelQueueItemFactory(model=model, priority_score=9.0)
    mine = LabelQueueItemFactory(model=model, priority_score=1.0, assigned_to=scientist)
    assert services.queue_item_claim_next(user=scientist).pk == mine.pk


def test_claim_next_skips_items_of_others_and_inactive_models(scientist, other_scientist):  # type: ignore[no-untyped-def]
    LabelQueueItemFactory(assigned_to=other_scientist)
    LabelQueueItemFactory(model=MLModelFactory(status="superseded"))
    assert services.queue_item_claim_next(user=scientist) is None


def test_viewers_cannot_claim(viewer):  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied):
        services.queue_item_claim_next(user=viewer)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_claims_get_twenty_distinct_items(django_user_model):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    group = Group.objects.get_or_create(name="scientist")[0]
    users = []
    for i in range(20):
        u = django_user_model.objects.create_user(username=f"claimer{i}")
        u.groups.add(group)
        users.append(u)
    model = MLModelFactory()
    for _ in range(25):
        LabelQueueItemFactory(model=model)

    results: list = []
    errors: list = []
    barrier = threading.Barrier(20)

    def claim(user):  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            item = services.queue_item_claim_next(user=user)
            results.append(item.pk if item else None)
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert None not in results
    assert len(set(results)) == 20
    assert LabelQueueItem.objects.filter(status=QueueStatus.IN_PROGRESS).count() == 20


def test_a_label_creates_a_measurement_and_records_who_and_when(scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()

    services.label_submit(item_id=item.pk, user=scientist, value="-2.5", source="experimental", confidence="high", notes="n")

    item.refresh_from_db()
    assert item.status == QueueStatus.LABELED
    assert item.label == -2.5
    assert item.labeled_by == scientist
    assert item.labeled_at is not None
    m = Measurement.objects.get(queue_item=item)
    assert (m.value, m.source, m.confidence, m.created_by) == (-2.5, "experimental", "high", scientist)
    assert AuditEvent.objects.filter(item=item, action="label", actor=scientist).exists()


def test_a_second_label_is_a_conflict_and_changes_nothing(scientist, other_scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    services.label_submit(item_id=item.pk, user=scientist, value=1.0)
    with pytest.raises(Conflict, match="already labeled"):
        services.label_submit(item_id=item.pk, user=other_scientist, value=2.0)
    item.refresh_from_db()
    assert item.label == 1.0
    assert Measurement.objects.count() == 1


@pytest.mark.parametrize("value", ["abc", "nan", float("inf"), "", None])
def test_bad_regression_values_are_refused_and_nothing_is_written(scientist, value):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    with pytest.raises(ValidationFailed):
        services.label_submit(item_id=item.pk, user=scientist, value=value)
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING
    assert not Measurement.objects.exists()


def test_classification_labels_must_be_one_of_the_classes(scientist):  # type: ignore[no-untyped-def]
    assay = AssayFactory(task_type=TaskType.CLASSIFICATION, classes=["inactive", "active"])
    model = MLModelFactory(assay=assay)
    item = LabelQueueItemFactory(model=model)
    with pytest.raises(ValidationFailed, match="not one of the classes"):
        services.label_submit(item_id=item.pk, user=scientist, value="maybe")
    with pytest.raises(ValidationFailed, match="out of range"):
        services.label_submit(item_id=item.pk, user=scientist, value=2)
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING and not Measurement.objects.exists()  # nothing written
    services.label_submit(item_id=item.pk, user=scientist, value="active")
    item.refresh_from_db()
    assert item.label == 1.0


def test_bad_source_or_confidence_is_refused(scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    with pytest.raises(ValidationFailed, match="source"):
        services.label_submit(item_id=item.pk, user=scientist, value=1, source="imported")
    with pytest.raises(ValidationFailed, match="confidence"):
        services.label_submit(item_id=item.pk, user=scientist, value=1, confidence="sure")


def test_a_scientist_cannot_label_an_item_assigned_to_someone_else(scientist, other_scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory(assigned_to=other_scientist)
    with pytest.raises(PermissionDenied):
        services.label_submit(item_id=item.pk, user=scientist, value=1)
    with pytest.raises(PermissionDenied):
        services.queue_item_skip(item_id=item.pk, user=scientist)


def test_unknown_or_malformed_item_ids_are_not_found(scientist):  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        services.label_submit(item_id="not-a-uuid", user=scientist, value=1)
    with pytest.raises(NotFound):
        services.label_submit(item_id="00000000-0000-0000-0000-000000000000", user=scientist, value=1)


def test_skip_then_skip_again_or_label_is_a_conflict(scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    services.queue_item_skip(item_id=item.pk, user=scientist, reason="cannot source")
    with pytest.raises(Conflict):
        services.queue_item_skip(item_id=item.pk, user=scientist)
    # The refusal names both ways back: the skipper's own undo and a lead's reset.
    with pytest.raises(Conflict, match="the scientist who skipped it can undo the skip, or a lead can reset"):
        services.label_submit(item_id=item.pk, user=scientist, value=1)


def test_a_skip_reason_longer_than_the_notes_cap_is_refused_and_nothing_is_stored(scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    with pytest.raises(ValidationFailed, match="at most 5,000") as exc:
        services.queue_item_skip(item_id=item.pk, user=scientist, reason="x" * 5001)
    assert exc.value.extra["field"] == "reason"
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING and not AuditEvent.objects.filter(item=item).exists()
    services.queue_item_skip(item_id=item.pk, user=scientist, reason="y" * 5000)
    assert AuditEvent.objects.get(item=item, action="skip").data["reason"] == "y" * 5000


def test_skipping_a_labeled_item_is_a_conflict(scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    services.label_submit(item_id=item.pk, user=scientist, value=1)
    with pytest.raises(Conflict):
        services.queue_item_skip(item_id=item.pk, user=scientist)


def test_only_leads_assign_and_only_to_people_who_can_label(lead, scientist, viewer):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    with pytest.raises(PermissionDenied):
        services.queue_item_assign(item_id=item.pk, assignee_id=scientist.pk, user=scientist)
    with pytest.raises(ValidationFailed, match="cannot label"):
        services.queue_item_assign(item_id=item.pk, assignee_id=viewer.pk, user=lead)

    services.queue_item_assign(item_id=item.pk, assignee_id=scientist.pk, user=lead)
    item.refresh_from_db()
    assert item.assigned_to == scientist
    services.queue_item_assign(item_id=item.pk, assignee_id=scientist.pk, user=lead)  # already so: no event
    services.queue_item_assign(item_id=item.pk, assignee_id=None, user=lead)
    item.refresh_from_db()
    assert item.assigned_to is None
    events = selectors.queue_item_events(item=item)
    assert [e.action for e in events] == ["unassign", "assign"]
    # The history names people, not only ids.
    assert events[1].data["assignee_username"] == scientist.username
    assert events[0].data["previous_username"] == scientist.username and events[0].data["assignee_username"] is None


def test_lead_resets_a_skipped_item_and_corrects_a_label_keeping_history(lead, scientist):  # type: ignore[no-untyped-def]
    skipped = LabelQueueItemFactory()
    services.queue_item_skip(item_id=skipped.pk, user=scientist, reason="no sample left")
    services.queue_item_reset(item_id=skipped.pk, user=lead)
    skipped.refresh_from_db()
    # Back in the queue without the skip's reason in its notes; the history keeps it.
    assert (skipped.status, skipped.notes) == (QueueStatus.PENDING, "")
    assert AuditEvent.objects.get(item=skipped, action="reset").data == {"skip_reason": "no sample left"}

    labeled = LabelQueueItemFactory()
    services.label_submit(item_id=labeled.pk, user=scientist, value=1.0)
    with pytest.raises(ValidationFailed, match="say why the label changed") as err:
        services.label_correct(item_id=labeled.pk, user=lead, value=2.0)
    assert err.value.extra == {"field": "notes"}
    services.label_correct(item_id=labeled.pk, user=lead, value=2.0, notes="unit mix-up")
    labeled.refresh_from_db()
    assert labeled.label == 2.0
    assert Measurement.objects.get(queue_item=labeled).value == 2.0
    event = AuditEvent.objects.get(item=labeled, action="correct")
    assert event.data == {"old_value": 1.0, "new_value": 2.0, "notes": "unit mix-up"}


def test_queue_filters_and_orderings(scientist):  # type: ignore[no-untyped-def]
    model = MLModelFactory()
    a = LabelQueueItemFactory(model=model, priority_score=1, uncertainty=0.9)
    b = LabelQueueItemFactory(model=model, priority_score=2, uncertainty=0.1, assigned_to=scientist)
    LabelQueueItemFactory(priority_score=3)
    assert list(selectors.queue_items_list(model_id=model.pk)) == [b, a]
    assert list(selectors.queue_items_list(model_id=model.pk, ordering="uncertainty")) == [a, b]
    assert list(selectors.queue_items_list(assigned_to=scientist.pk)) == [b]
    assert list(selectors.queue_items_list(model_id=model.pk, assigned_to="none")) == [a]


def test_adding_a_compound_already_open_for_the_model_is_a_conflict():  # type: ignore[no-untyped-def]
    model = MLModelFactory()
    compound = CompoundFactory()
    entry = services.QueueEntry(compound_id=compound.pk, priority_score=1.0)
    services.queue_items_add(model=model, cycle=None, selection_batch=1, strategy="random", entries=[entry])
    with pytest.raises(Conflict):
        services.queue_items_add(model=model, cycle=None, selection_batch=2, strategy="random", entries=[entry])
    assert LabelQueueItem.objects.count() == 1


def test_an_item_of_a_superseded_version_is_not_reset_into_the_live_queue(lead, scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    services.queue_item_skip(item_id=item.pk, user=scientist)
    type(item.model).objects.filter(pk=item.model_id).update(status="superseded")
    with pytest.raises(Conflict, match="which is superseded"):
        services.queue_item_reset(item_id=item.pk, user=lead)
    item.refresh_from_db()
    assert item.status == QueueStatus.SKIPPED


def test_bulk_actions_count_each_refusal_under_the_services_own_reason(lead, scientist):  # type: ignore[no-untyped-def]
    old = MLModelFactory(name="Solubility", version=1)
    stale = [LabelQueueItemFactory(model=old) for _ in range(2)]
    for item in stale:
        services.queue_item_skip(item_id=item.pk, user=scientist)
    type(old).objects.filter(pk=old.pk).update(status="superseded")
    live = LabelQueueItemFactory()
    services.queue_item_skip(item_id=live.pk, user=scientist)
    pending = LabelQueueItemFactory()

    outcome = services.queue_items_reset(item_ids=[*(i.pk for i in stale), live.pk, pending.pk, "nope"], user=lead)

    assert (outcome.done, outcome.total) == (1, 5)
    assert outcome.refused == {
        "This item belongs to Solubility v1, which is superseded; select the compound again with the active version.": 2,
        "Only skipped or in-progress items can be reset (this one is pending).": 1,
        "No such queue item.": 1,
    }
    assert outcome.refusals_text().startswith("2 left unchanged: This item belongs to Solubility v1, which is superseded")
    skipped = services.queue_items_skip(item_ids=[live.pk], user=lead)
    assert skipped.done == 1 and not skipped.refused


def test_bulk_actions_lock_a_chunk_at_a_time_and_a_refusal_undoes_only_its_item(lead, scientist, monkeypatch):  # type: ignore[no-untyped-def]
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(services, "BULK_CHUNK", 3)
    model = MLModelFactory()
    items = [LabelQueueItemFactory(model=model) for _ in range(7)]
    services.label_submit(item_id=items[4].pk, user=scientist, value=1.5)  # not open: refused
    ids = [i.pk for i in items[:4]] + ["not-a-uuid", items[4].pk, items[5].pk, items[6].pk, items[0].pk]

    with CaptureQueriesContext(connection) as queries:
        outcome = services.queue_items_assign(item_ids=ids, assignee_id=scientist.pk, user=lead)

    # 9 ids in chunks of 3: one locking query per chunk, not one per item.
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert len(locks) == 3
    assert (outcome.done, outcome.total) == (7, 9)  # items[0] twice: already so the second time
    assert outcome.refused == {"No such queue item.": 1, "Only open items can be assigned (this one is labeled).": 1}
    rows = {i.pk: i for i in LabelQueueItem.objects.filter(model=model)}
    assert all(rows[i.pk].assigned_to_id == scientist.pk for i in items)  # items[4]: by its label
    assert AuditEvent.objects.filter(action="assign").count() == 6  # one per change, none for the refusal

    skipped = services.queue_items_skip(item_ids=[i.pk for i in items], user=lead)
    assert (skipped.done, skipped.refused) == (6, {"Only open (pending or claimed) items can be skipped (this one is labeled).": 1})
    assert services.queue_items_reset(item_ids=[i.pk for i in items], user=lead).done == 6
    assert LabelQueueItem.objects.filter(model=model, status="pending").count() == 6


def test_batches_are_served_in_the_order_they_were_selected(scientist):  # type: ignore[no-untyped-def]
    # An uncertainty cycle's std values (~0.3–0.5) and a later random cycle's uniform
    # draws (0–1) are not on one scale: the earlier batch is served first, each batch
    # best first by its own score.
    model = MLModelFactory()
    first = [LabelQueueItemFactory(model=model, selection_batch=1, selection_strategy="uncertainty", priority_score=s)
             for s in (0.31, 0.48)]
    later = [LabelQueueItemFactory(model=model, selection_batch=2, selection_strategy="random", priority_score=s)
             for s in (0.97, 0.12)]
    served = [first[1], first[0], later[0], later[1]]
    assert list(selectors.queue_items_list(status="open", model_id=model.pk)) == served
    assert list(selectors.queue_items_list(status="open", model_id=model.pk, ordering="-priority")) == served[::-1]
    walk = [served[0]]
    for _ in range(4):
        walk.append(selectors.queue_next_item(after=walk[-1], user=scientist, model_id=model.pk))
    assert walk == [*served, served[0]]  # Next walks the same order and wraps round
    claimed = [services.queue_item_claim_next(user=other) for other in _scientists(4)]
    assert claimed == served


def _scientists(n: int) -> list:  # type: ignore[type-arg]
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    group = Group.objects.get_or_create(name="scientist")[0]
    users = [UserFactory(username=f"batch-scientist-{i}") for i in range(n)]
    for user in users:
        user.groups.add(group)
    return users


def test_the_labeler_corrects_their_own_label_until_a_retrain_learns_it(scientist, other_scientist, lead):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    services.label_submit(item_id=item.pk, user=scientist, value=1.0)
    with pytest.raises(PermissionDenied, match="Only the scientist who labeled it or a lead"):
        services.label_correct(item_id=item.pk, user=other_scientist, value=2.0, notes="looks off")
    with pytest.raises(ValidationFailed, match="say why"):
        services.label_correct(item_id=item.pk, user=scientist, value=2.0)
    services.label_correct(item_id=item.pk, user=scientist, value=2.0, notes="typo")
    item.refresh_from_db()
    assert item.label == 2.0 and Measurement.objects.get(queue_item=item).value == 2.0
    assert AuditEvent.objects.get(item=item, action="correct").actor == scientist
    # Archived (a retrain learned it): the labeler's own window is closed; a lead's is not.
    LabelQueueItem.objects.filter(pk=item.pk).update(status=QueueStatus.ARCHIVED)
    with pytest.raises(PermissionDenied, match="a retrain has learned it"):
        services.label_correct(item_id=item.pk, user=scientist, value=3.0, notes="again")
    services.label_correct(item_id=item.pk, user=lead, value=3.0, notes="re-measured")


def test_the_labeler_cannot_correct_a_label_of_a_superseded_version(scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    services.label_submit(item_id=item.pk, user=scientist, value=1.0)
    type(item.model).objects.filter(pk=item.model_id).update(status="superseded")
    with pytest.raises(PermissionDenied):
        services.label_correct(item_id=item.pk, user=scientist, value=2.0, notes="typo")


def test_the_scientist_who_skipped_an_item_may_undo_the_skip(scientist, other_scientist):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory()
    assert services.queue_item_claim_next(user=scientist) == item
    services.queue_item_skip(item_id=item.pk, user=scientist, reason="stray key")
    with pytest.raises(PermissionDenied, match="Only the scientist who skipped it or a lead"):
        services.queue_item_reset(item_id=item.pk, user=other_scientist)
    services.queue_item_reset(item_id=item.pk, user=scientist)
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING and item.notes == ""
    assert AuditEvent.objects.filter(item=item, action="reset", actor=scientist).exists()
    # A scientist resets nothing else (a stuck claim is a lead's call).
    services.queue_item_claim_next(user=scientist)
    with pytest.raises(PermissionDenied):
        services.queue_item_reset(item_id=item.pk, user=scientist)
