"""Django admin for the queue: list, filters, bulk actions through services; leads only."""

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from cycles.models import Job
from labeling.models import AuditEvent, LabelQueueItem, QueueStatus
from tests.factories import LabelQueueItemFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:labeling_labelqueueitem_changelist")


def test_leads_see_the_queue_with_thumbnails_without_n_plus_one(client_for, lead, model, cycle, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    for i in range(20):
        LabelQueueItemFactory(model=model, cycle=cycle, priority_score=float(i))
    c = client_for(lead)
    body = c.get(CHANGELIST).content.decode()
    assert body.count("/structure.svg?w=120") == 20
    with django_assert_max_num_queries(25):
        c.get(CHANGELIST, {"status__exact": "pending"})
    assert c.get(CHANGELIST, {"q": "cmpd"}).status_code == 200


@pytest.mark.parametrize("role", ["viewer", "scientist"])
def test_non_leads_do_not_reach_admin(request, client_for, role):  # type: ignore[no-untyped-def]
    response = client_for(request.getfixturevalue(role)).get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_assign_action_asks_for_the_user_then_calls_the_service(client_for, lead, scientist, items):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    ids = [str(i.pk) for i in items[:2]]
    page = c.post(CHANGELIST, {"action": "assign_to_user", helpers.ACTION_CHECKBOX_NAME: ids})
    assert page.status_code == 200 and "sam-scientist" in page.content.decode()
    done = c.post(CHANGELIST, {"action": "assign_to_user", helpers.ACTION_CHECKBOX_NAME: ids, "apply": "1",
                               "assignee": scientist.pk}, follow=True)
    assert "Assigned to sam-scientist: 2 of 2 items." in done.content.decode()
    assert LabelQueueItem.objects.filter(assigned_to=scientist).count() == 2
    assert AuditEvent.objects.filter(action="assign", actor=lead).count() == 2


def test_skip_and_reset_actions(client_for, lead, items):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    ids = [str(i.pk) for i in items[:3]]
    c.post(CHANGELIST, {"action": "skip_items", helpers.ACTION_CHECKBOX_NAME: ids})
    assert LabelQueueItem.objects.filter(status=QueueStatus.SKIPPED).count() == 3
    body = c.post(CHANGELIST, {"action": "reset_items", helpers.ACTION_CHECKBOX_NAME: [*ids, str(items[4].pk)]},
                  follow=True).content.decode()
    assert "Reset to pending: 3 of 4 items; 1 left unchanged: Only skipped or in-progress items can be reset (this one is pending)." in body
    assert not LabelQueueItem.objects.filter(status=QueueStatus.SKIPPED).exists()


@pytest.mark.parametrize(
    "name",
    ["labeling_auditevent", "mlmodels_mlmodel", "mlmodels_validationset", "cycles_activelearningcycle", "cycles_job"],
)
def test_the_other_models_are_registered(client_for, lead, cycle, name):  # type: ignore[no-untyped-def]
    Job.objects.create(kind="retrain")
    assert client_for(lead).get(reverse(f"admin:{name}_changelist")).status_code == 200


def test_the_audit_trail_is_read_only(client_for, lead, items):  # type: ignore[no-untyped-def]
    from labeling import services

    services.queue_item_skip(item_id=items[0].pk, user=lead)
    event = AuditEvent.objects.get()
    c = client_for(lead)
    assert c.get(reverse("admin:labeling_auditevent_add")).status_code == 403
    assert c.post(reverse("admin:labeling_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403


def test_admin_cannot_bypass_the_services_on_items_cycles_and_models(client_for, lead, items, cycle, model):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    item = items[0]
    change = reverse("admin:labeling_labelqueueitem_change", args=[item.pk])
    page = c.get(change)
    assert page.status_code == 200 and 'name="status"' not in page.content.decode()
    c.post(change, {"status": "labeled", "notes": "x"})
    item.refresh_from_db()
    assert item.status == QueueStatus.PENDING and item.label is None  # was a 500 (labeled without a label)
    assert c.get(reverse("admin:labeling_labelqueueitem_add")).status_code == 403
    for name, obj in (("cycles_activelearningcycle", cycle), ("mlmodels_mlmodel", model)):
        assert c.get(reverse(f"admin:{name}_change", args=[obj.pk])).status_code == 200  # read-only view
        assert c.post(reverse(f"admin:{name}_change", args=[obj.pk]), {"status": "failed"}).status_code == 403
        assert c.get(reverse(f"admin:{name}_add")).status_code == 403
    cycle.refresh_from_db()
    model.refresh_from_db()
    assert (cycle.status, model.status) == ("labeling", "active")


def test_reset_action_says_why_an_item_of_a_superseded_version_stayed(client_for, lead, items, model):  # type: ignore[no-untyped-def]
    from labeling import services

    services.queue_item_skip(item_id=items[0].pk, user=lead)
    type(model).objects.filter(pk=model.pk).update(status="superseded")
    body = client_for(lead).post(
        CHANGELIST, {"action": "reset_items", helpers.ACTION_CHECKBOX_NAME: [str(items[0].pk)]}, follow=True
    ).content.decode()
    assert f"1 left unchanged: This item belongs to {model}, which is superseded; select the compound again" in body
    assert "not in a state that allows it" not in body


def test_assign_to_all_items_the_filters_select_posts_the_selection_not_every_id(  # type: ignore[no-untyped-def]
    client_for, lead, scientist, items, settings
):
    """"Select all N" then Assign: the confirmation page listed every id as a hidden field,
    so with 6,203 items its post exceeded DATA_UPLOAD_MAX_NUMBER_FIELDS and got a bare 400."""
    import re

    for i in range(6):  # 11 open items in all
        LabelQueueItemFactory(model=items[0].model, cycle=items[0].cycle, priority_score=float(i))
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 8  # fewer than the items, as 1,000 is on a big queue
    c = client_for(lead)
    first = items[0]
    url = f"{CHANGELIST}?status__exact=pending"
    page = c.post(url, {"action": "assign_to_user", "select_across": "1", "index": "0",
                        helpers.ACTION_CHECKBOX_NAME: [str(first.pk)]})
    body = page.content.decode()
    pending = LabelQueueItem.objects.filter(status=QueueStatus.PENDING).count()
    assert pending > 8 and f"Assign these {pending} queue items" in body
    fields = dict(re.findall(r'<input type="hidden" name="(select_across|action)" value="([^"]+)"', body))
    assert fields == {"select_across": "1", "action": "assign_to_user"}
    done = c.post(url, {**fields, helpers.ACTION_CHECKBOX_NAME: [str(first.pk)], "apply": "1",
                        "assignee": scientist.pk}, follow=True)
    assert done.status_code == 200
    assert f"Assigned to sam-scientist: {pending} of {pending} items." in done.content.decode()
    assert LabelQueueItem.objects.filter(assigned_to=scientist).count() == pending
