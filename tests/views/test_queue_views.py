"""The label queue page: filters, sorting, paging, bulk actions, roles."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from labeling import services
from labeling.models import LabelQueueItem, QueueStatus
from labeling.selectors import QUEUE_VERSION_KEY
from tests.factories import LabelQueueItemFactory, MLModelFactory

pytestmark = pytest.mark.django_db
QUEUE = reverse("labeling:queue")


def test_the_queue_lists_items_with_structures_and_compound_links(client_for, scientist, items):  # type: ignore[no-untyped-def]
    body = client_for(scientist).get(QUEUE).content.decode()
    first = items[0]
    assert reverse("compounds:structure", args=[first.compound_id]) in body
    assert reverse("compounds:detail", args=[first.compound_id]) in body
    assert reverse("labeling:item", args=[first.pk]) in body
    assert "5 items" in body


def test_viewers_and_scientists_get_no_bulk_actions_but_leads_do(client_for, viewer, scientist, lead, items):  # type: ignore[no-untyped-def]
    for user in (viewer, scientist):
        body = client_for(user).get(QUEUE).content.decode()
        assert 'name="items"' not in body
        assert "Assign to…" not in body
    body = client_for(lead).get(QUEUE).content.decode()
    assert body.count('name="items"') == 5
    assert "Reset to pending" in body


def test_viewers_see_no_label_buttons(client_for, viewer, items):  # type: ignore[no-untyped-def]
    body = client_for(viewer).get(QUEUE).content.decode()
    assert 'role="button" class="small">Label</a>' not in body
    assert "Start labeling" not in body


def test_htmx_filtering_returns_only_the_rows_fragment(client_for, scientist, items, other_scientist):  # type: ignore[no-untyped-def]
    mine = items[0]
    LabelQueueItem.objects.filter(pk=mine.pk).update(assigned_to=scientist)
    LabelQueueItem.objects.filter(pk=items[1].pk).update(assigned_to=other_scientist)
    response = client_for(scientist).get(QUEUE, {"assigned_to": "me"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="rows"' in body
    assert str(mine.pk) in body
    assert str(items[1].pk) not in body
    unassigned = client_for(scientist).get(QUEUE, {"assigned_to": "none"}, HTTP_HX_REQUEST="true").content.decode()
    assert str(mine.pk) not in unassigned and str(items[2].pk) in unassigned


def test_the_count_badges_count_what_the_assignee_filter_shows(client_for, scientist, other_scientist, items):  # type: ignore[no-untyped-def]
    LabelQueueItem.objects.filter(pk=items[0].pk).update(assigned_to=scientist, status=QueueStatus.IN_PROGRESS)
    LabelQueueItem.objects.filter(pk=items[1].pk).update(assigned_to=other_scientist)
    c = client_for(scientist)
    mine = c.get(QUEUE, {"assigned_to": "me"}, HTTP_HX_REQUEST="true").content.decode()
    assert "0 pending" in mine and "1 in progress" in mine
    everyone = c.get(QUEUE, HTTP_HX_REQUEST="true").content.decode()
    assert "4 pending" in everyone and "1 in progress" in everyone
    nobody = c.get(QUEUE, {"assigned_to": "none"}, HTTP_HX_REQUEST="true").content.decode()
    assert "3 pending" in nobody and "0 in progress" in nobody


def test_the_export_link_follows_the_filters_chosen_on_the_page(client_for, lead, items):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    page = c.get(QUEUE).content.decode()
    assert 'id="queue-export" href="/queue/export.csv?status=open&amp;sort=priority"' in page
    # An htmx filter change swaps only the rows; the link outside them comes along out of band.
    rows = c.get(QUEUE, {"status": "labeled", "assigned_to": "me"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="queue-export" hx-swap-oob="true" href="/queue/export.csv?status=labeled&amp;assigned_to=me&amp;sort=priority"' in rows
    labeled = c.get("/queue/export.csv", {"status": "labeled"})
    assert b"".join(labeled.streaming_content).decode().count("\n") == 1  # the header only


def test_status_and_model_filters(client_for, viewer, items):  # type: ignore[no-untyped-def]
    LabelQueueItem.objects.filter(pk=items[0].pk).update(status=QueueStatus.SKIPPED)
    other = LabelQueueItemFactory(model=MLModelFactory())
    c = client_for(viewer)
    assert str(items[0].pk) not in c.get(QUEUE).content.decode()  # default: open items only
    skipped = c.get(QUEUE, {"status": "skipped"}).content.decode()
    assert str(items[0].pk) in skipped and str(items[1].pk) not in skipped
    by_model = c.get(QUEUE, {"model": other.model_id, "status": "all"}).content.decode()
    assert str(other.pk) in by_model and str(items[1].pk) not in by_model


def test_sorting_reverses_the_order(client_for, viewer, items):  # type: ignore[no-untyped-def]
    c = client_for(viewer)
    best_first = c.get(QUEUE, {"sort": "priority"}).content.decode()
    worst_first = c.get(QUEUE, {"sort": "-priority"}).content.decode()
    assert best_first.index(str(items[0].pk)) < best_first.index(str(items[4].pk))
    assert worst_first.index(str(items[4].pk)) < worst_first.index(str(items[0].pk))


def test_a_bad_filter_value_falls_back_to_the_default_view(client_for, viewer, items):  # type: ignore[no-untyped-def]
    response = client_for(viewer).get(QUEUE, {"assigned_to": "'; drop", "status": "nonsense", "page": "x"})
    assert response.status_code == 200
    assert str(items[0].pk) in response.content.decode()


def test_a_bad_filter_is_dropped_alone_and_named_and_the_export_refuses_it(client_for, lead, items):  # type: ignore[no-untyped-def]
    """`?model=N&status=bogus` used to drop every filter with the bad one, showing every
    model's items as if filtered; the valid filters now apply and the page names the
    ignored one. A CSV cannot say what it ignored: the export answers 400."""
    other = LabelQueueItemFactory(model=MLModelFactory())
    c = client_for(lead)
    body = c.get(QUEUE, {"model": other.model_id, "status": "bogus"}).content.decode()
    assert str(other.pk) in body and str(items[0].pk) not in body  # the model filter still applies
    assert 'id="ignored-filters"' in body and "status:" in body and "bogus" in body
    assert 'id="ignored-filters"' not in c.get(QUEUE, {"model": other.model_id}).content.decode()
    export = c.get(reverse("labeling:export"), {"model": other.model_id, "status": "bogus"})
    assert export.status_code == 400 and b"status:" in export.content
    assert c.get(reverse("labeling:export"), {"model": other.model_id}).status_code == 200


def test_paging(client_for, viewer, model):  # type: ignore[no-untyped-def]
    made = [LabelQueueItemFactory(model=model, priority_score=100.0 - i) for i in range(30)]
    c = client_for(viewer)
    page1 = c.get(QUEUE).content.decode()
    page2 = c.get(QUEUE, {"page": 2}).content.decode()
    assert "page 1 of 2" in page1 and str(made[0].pk) in page1 and str(made[29].pk) not in page1
    assert str(made[29].pk) in page2
    # Each page in queue order (the page's ids are read first, then its rows: config.paginator).
    for page, rows in ((page1, made[:25]), (page2, made[25:])):
        positions = [page.find(reverse("labeling:item", args=[item.pk])) for item in rows]
        assert -1 not in positions and positions == sorted(positions)


@pytest.mark.parametrize(
    ("role", "text"),
    [("lead", "Run a selection"), ("scientist", "Ask your lead"), ("viewer", "A lead runs selections")],
)
def test_the_empty_queue_says_what_to_do_next(request, client_for, role, text):  # type: ignore[no-untyped-def]
    body = client_for(request.getfixturevalue(role)).get(QUEUE).content.decode()
    assert text in body


def test_the_page_costs_the_same_queries_for_5_or_25_items(client_for, viewer, model, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    for i in range(25):
        LabelQueueItemFactory(model=model, priority_score=float(i))
    c = client_for(viewer)
    c.get(QUEUE)  # warm the session
    cache.delete(QUEUE_VERSION_KEY)  # a new version: measure a render, not a cache hit
    with django_assert_max_num_queries(12):
        c.get(QUEUE)


def test_a_repeated_page_comes_from_the_cache_until_a_service_changes_the_queue(  # type: ignore[no-untyped-def]
    client_for, scientist, items, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    c = client_for(scientist)
    assert str(items[0].pk) in c.get(QUEUE).content.decode()
    # A hit reads only the session, the user and their roles: no queue query.
    with django_assert_max_num_queries(3):
        again = c.get(QUEUE)
    assert again.status_code == 200 and str(items[0].pk) in again.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        services.queue_item_skip(item_id=items[0].pk, user=scientist)
    body = c.get(QUEUE).content.decode()
    assert str(items[0].pk) not in body and "4 items" in body
    rows = c.get(QUEUE, HTTP_HX_REQUEST="true").content.decode()
    assert str(items[0].pk) not in rows and "4 items" in rows


def test_cached_pages_are_per_user_and_keep_the_csrf_token_per_session(client_for, lead, scientist, items):  # type: ignore[no-untyped-def]
    mine = items[0]
    LabelQueueItem.objects.filter(pk=mine.pk).update(assigned_to=scientist)
    sam = client_for(scientist).get(QUEUE, {"assigned_to": "me"}).content.decode()
    lea = client_for(lead).get(QUEUE, {"assigned_to": "me"}).content.decode()
    assert str(mine.pk) in sam and str(mine.pk) not in lea
    lead_client = client_for(lead)
    for _ in range(2):  # rendered, then from the cache: the token is this session's each time
        response = lead_client.get(QUEUE)
        token = response.content.decode().split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        assert 'form="bulk-form"' in response.content.decode()
        assert _unmask(token) == _unmask(response.cookies.get("csrftoken").value if "csrftoken" in response.cookies else lead_client.cookies["csrftoken"].value)


def _unmask(token: str) -> str:
    from django.middleware.csrf import _unmask_cipher_token

    return _unmask_cipher_token(token) if len(token) == 64 else token


def test_a_lead_bulk_assigns_to_a_scientist(client_for, lead, scientist, items):  # type: ignore[no-untyped-def]
    ids = [str(i.pk) for i in items[:3]]
    response = client_for(lead).post(
        reverse("labeling:bulk"),
        {"action": "assign", "assignee": scientist.pk, "items": ids, "next": QUEUE + "?status=open"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == QUEUE + "?status=open"
    assert "Assigned to sam-scientist: 3 items." in response.content.decode()
    assert LabelQueueItem.objects.filter(assigned_to=scientist).count() == 3


def test_bulk_skip_and_reset(client_for, lead, items):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    ids = [str(i.pk) for i in items[:2]]
    c.post(reverse("labeling:bulk"), {"action": "skip", "items": ids})
    assert LabelQueueItem.objects.filter(status=QueueStatus.SKIPPED).count() == 2
    body = c.post(reverse("labeling:bulk"), {"action": "reset", "items": [*ids, str(items[3].pk)]}, follow=True).content.decode()
    assert LabelQueueItem.objects.filter(status=QueueStatus.SKIPPED).count() == 0
    assert "1 left unchanged: Only skipped or in-progress items can be reset (this one is pending)." in body


def test_bulk_reset_names_the_superseded_version_it_refused(client_for, lead, items, model):  # type: ignore[no-untyped-def]
    from labeling import services

    services.queue_item_skip(item_id=items[0].pk, user=lead)
    type(model).objects.filter(pk=model.pk).update(status="superseded")
    body = client_for(lead).post(reverse("labeling:bulk"), {"action": "reset", "items": [str(items[0].pk)]},
                                 follow=True).content.decode()
    assert f"1 left unchanged: This item belongs to {model}, which is superseded" in body


def test_bulk_assign_needs_an_assignee_and_items(client_for, lead, items):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    body = c.post(reverse("labeling:bulk"), {"action": "assign", "items": [str(items[0].pk)]}, follow=True).content.decode()
    assert "Choose who to assign the items to." in body
    body = c.post(reverse("labeling:bulk"), {"action": "skip"}, follow=True).content.decode()
    assert "Select at least one item." in body
    assert not LabelQueueItem.objects.exclude(status=QueueStatus.PENDING).exists()


def test_bulk_next_never_redirects_off_site(client_for, lead, items):  # type: ignore[no-untyped-def]
    response = client_for(lead).post(
        reverse("labeling:bulk"), {"action": "skip", "items": [str(items[0].pk)], "next": "https://evil.example/"}
    )
    assert response["Location"] == QUEUE


@pytest.mark.parametrize("role", ["viewer", "scientist"])
def test_only_leads_may_post_bulk_actions(request, client_for, role, items):  # type: ignore[no-untyped-def]
    response = client_for(request.getfixturevalue(role)).post(
        reverse("labeling:bulk"), {"action": "skip", "items": [str(items[0].pk)]}
    )
    assert response.status_code == 403
    assert not LabelQueueItem.objects.filter(status=QueueStatus.SKIPPED).exists()


def test_bulk_is_post_only(client_for, lead):  # type: ignore[no-untyped-def]
    assert client_for(lead).get(reverse("labeling:bulk")).status_code == 405


def test_without_a_shared_cache_every_request_renders(client_for, scientist, items, settings):  # type: ignore[no-untyped-def]
    settings.QUEUE_PAGE_CACHE_SECONDS = 0  # what settings choose when REDIS_URL is unset
    c = client_for(scientist)
    assert str(items[0].pk) in c.get(QUEUE).content.decode()
    LabelQueueItem.objects.filter(pk=items[0].pk).update(status=QueueStatus.SKIPPED)  # no version bump
    assert str(items[0].pk) not in c.get(QUEUE).content.decode()


def test_a_flash_message_is_shown_once_and_never_cached(client_for, lead, items, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    c.get(QUEUE)  # cached
    # A refused bulk action changes nothing (no new queue version) but leaves a message.
    c.post(reverse("labeling:bulk"), {"action": "skip"})
    first = c.get(QUEUE).content.decode()
    assert 'class="message error"' in first
    with django_assert_max_num_queries(3):  # back to the cached page, without the message
        second = c.get(QUEUE).content.decode()
    assert 'class="message' not in second and str(items[0].pk) in second


def test_the_shared_cache_keeps_one_redis_client_per_pool():  # type: ignore[no-untyped-def]
    backend = cache._cache  # config.cache.RedisCache (test settings use Redis)
    assert backend.get_client() is backend.get_client()
    assert backend.get_client(write=True) is backend.get_client()  # one server: one pool
    cache.set("chemloop-test-key", {"a": 1}, 5)
    assert cache.get_many(["chemloop-test-key", "missing"]) == {"chemloop-test-key": {"a": 1}}


def _export(client, **params):  # type: ignore[no-untyped-def]
    import csv
    import io

    response = client.get("/queue/export.csv", params)
    raw = b"".join(response.streaming_content)
    return response, raw, list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def test_a_classification_export_names_classes_and_gives_their_probabilities(client_for, scientist, db):  # type: ignore[no-untyped-def]
    from tests.factories import AssayFactory

    assay = AssayFactory(task_type="classification", classes=["soluble, yes ✓", "Ünlöslich  (no)"], units="")
    model = MLModelFactory(assay=assay)
    item = LabelQueueItemFactory(model=model, prediction=1.0, probabilities=[0.25, 0.75], uncertainty=0.56)
    services.label_submit(item_id=item.pk, user=scientist, value="soluble, yes ✓")
    response, raw, rows = _export(client_for(scientist), model=model.pk, status="all")
    # Excel reads the file as UTF-8 only with the byte order mark.
    assert response["Content-Type"] == "text/csv; charset=utf-8" and raw.startswith(b"\xef\xbb\xbf")
    assert list(rows[0])[-3:] == ["predicted_probability", "probability[soluble, yes ✓]", "probability[Ünlöslich  (no)]"]
    row = rows[0]
    assert (row["label"], row["prediction"], row["predicted_probability"]) == ("soluble, yes ✓", "Ünlöslich  (no)", "0.75")
    assert (row["probability[soluble, yes ✓]"], row["probability[Ünlöslich  (no)]"]) == ("0.25", "0.75")


def test_an_export_of_several_assays_keeps_regression_values_as_numbers(client_for, scientist, items, class_model):  # type: ignore[no-untyped-def]
    LabelQueueItemFactory(model=class_model, prediction=2.0, probabilities=[0.1, 0.3, 0.6])
    services.label_submit(item_id=items[0].pk, user=scientist, value="-3.5")
    _response, _raw, rows = _export(client_for(scientist), status="all")
    by_model = {r["model"]: r for r in rows}
    assert by_model["Sol class model"]["prediction"] == "high" and by_model["Sol class model"]["predicted_probability"] == "0.6"
    labeled = next(r for r in rows if r["item_id"] == str(items[0].pk))
    assert (labeled["label"], labeled["predicted_probability"]) == ("-3.5", "")
    assert not any(column.startswith("probability[") for column in rows[0])  # classes differ by assay
