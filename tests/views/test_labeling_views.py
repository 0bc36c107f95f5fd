"""The labeling page: claim next, label, skip, next, validation and conflicts, roles."""

import pytest
from django.urls import reverse

from compounds.models import Measurement
from labeling import services
from labeling.models import LabelQueueItem, QueueStatus
from tests.factories import LabelQueueItemFactory

pytestmark = pytest.mark.django_db
LABELING = reverse("labeling:labeling")


def _item_url(item, name="item"):  # type: ignore[no-untyped-def]
    return reverse(f"labeling:{name}", args=[item.pk])


def test_the_labeling_tab_claims_the_best_item_for_a_scientist(client_for, scientist, items):  # type: ignore[no-untyped-def]
    response = client_for(scientist).get(LABELING)
    assert response.status_code == 302
    assert response["Location"] == _item_url(items[0])
    items[0].refresh_from_db()
    assert items[0].status == QueueStatus.IN_PROGRESS and items[0].assigned_to == scientist


def test_viewers_see_the_top_item_read_only_without_claiming(client_for, viewer, items):  # type: ignore[no-untyped-def]
    c = client_for(viewer)
    response = c.get(LABELING)
    assert response["Location"] == _item_url(items[0])
    items[0].refresh_from_db()
    assert items[0].status == QueueStatus.PENDING
    body = c.get(_item_url(items[0])).content.decode()
    assert "labeling needs the scientist role" in body
    assert 'id="label-form"' not in body
    assert _item_url(items[0], "skip") not in body
    assert "Save &amp; next" not in body


@pytest.mark.parametrize(
    ("role", "text"), [("scientist", "Nothing to label — ask your lead."), ("lead", "Run a selection"), ("viewer", "The queue is empty.")]
)
def test_nothing_to_label_says_what_to_do(request, client_for, role, text):  # type: ignore[no-untyped-def]
    response = client_for(request.getfixturevalue(role)).get(LABELING)
    assert response.status_code == 200
    assert text in response.content.decode()


def test_the_item_page_shows_the_compound_prediction_reasons_and_shortcuts(client_for, scientist, items):  # type: ignore[no-untyped-def]
    body = client_for(scientist).get(_item_url(items[0])).content.decode()
    assert reverse("compounds:structure", args=[items[0].compound_id]) in body
    assert reverse("compounds:detail", args=[items[0].compound_id]) in body
    assert "95% interval" in body and "<svg" in body
    assert "Picked by <strong>uncertainty</strong>" in body  # the factory's strategy
    assert "Uncertainty" in body and 'class="meter"' in body
    assert reverse("mlmodels:explain", args=[items[0].model_id, items[0].compound_id]) in body  # lazy SHAP
    assert 'hx-trigger="load"' in body
    assert "Keyboard:" in body and 'data-shortcut="skip"' in body
    assert _item_url(items[1]) in body  # Next goes to the next open item
    assert "js/labeling.js" in body


def test_the_band_uses_the_model_s_calibrated_std_once_it_has_one(client_for, scientist, items):  # type: ignore[no-untyped-def]
    url = _item_url(items[0])
    body = client_for(scientist).get(url).content.decode()
    assert "± 1.96 × its spread (std 0.3)" in body  # a version trained before calibration
    model = items[0].model
    model.metrics = {"coverage_95": 0.93, "uncertainty_calibration": {"scale": 3.0, "noise": 0.09, "rows": 900}}
    model.save()
    body = client_for(scientist).get(url).content.decode()
    # √(3 × 0.3² + 0.09) = 0.6: the spread of the stored item, calibrated on out-of-bag errors
    assert "± 1.96 × its predictive std 0.6 (the ensemble's spread 0.3" in body
    assert "this band held 93%" in body and "not as a calibrated" not in body


def test_an_item_picked_during_a_warm_up_names_the_strategy_that_chose_it(client_for, scientist, items):  # type: ignore[no-untyped-def]
    item = items[0]
    item.score_components = {"rank": 0, "score": 0.4, "random": 0.4, "stage": "warmup", "picked_by": "random"}
    item.save(update_fields=["score_components"])
    body = client_for(scientist).get(_item_url(item)).content.decode()
    assert "Picked by <strong>random (warm-up of uncertainty)</strong>" in body


def test_an_out_of_domain_prediction_is_flagged(client_for, scientist, items):  # type: ignore[no-untyped-def]
    c = client_for(scientist)
    assert "Outside the applicability domain" not in c.get(_item_url(items[0])).content.decode()
    LabelQueueItem.objects.filter(pk=items[0].pk).update(applicability_distance=0.8)
    assert "Outside the applicability domain" in c.get(_item_url(items[0])).content.decode()


def test_classification_items_offer_class_choices_and_probability_bars(client_for, scientist, class_model):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory(model=class_model, prediction=2.0, probabilities=[0.1, 0.3, 0.6], uncertainty=0.8)
    body = client_for(scientist).get(_item_url(item)).content.decode()
    assert body.count('type="radio" name="value"') == 3
    assert 'data-class-key="3"' in body
    assert "Predicted class probabilities" in body
    assert "<strong>high</strong>" in body


def test_save_and_next_records_the_label_and_moves_on(client_for, scientist, items):  # type: ignore[no-untyped-def]
    c = client_for(scientist)
    response = c.post(
        _item_url(items[0], "submit"),
        {"value": "-3.25", "source": "literature", "confidence": "medium", "notes": "Yalkowsky"},
    )
    # Straight to the next item, claimed in the same request (no hop through the Labeling tab).
    assert response["Location"] == _item_url(items[1])
    items[0].refresh_from_db()
    assert items[0].status == QueueStatus.LABELED and items[0].label == -3.25
    m = Measurement.objects.get(queue_item=items[0])
    assert (m.source, m.confidence, m.notes, m.created_by) == ("literature", "medium", "Yalkowsky", scientist)
    items[1].refresh_from_db()
    assert items[1].status == QueueStatus.IN_PROGRESS and items[1].assigned_to == scientist


def test_the_last_save_goes_to_the_labeling_tab_which_says_the_queue_is_empty(client_for, scientist, model):  # type: ignore[no-untyped-def]
    only = LabelQueueItemFactory(model=model)
    c = client_for(scientist)
    response = c.post(_item_url(only, "submit"), {"value": "1", "source": "experimental"}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == LABELING
    assert "Nothing to label" in c.get(LABELING).content.decode()


def test_htmx_submit_redirects_the_whole_page(client_for, scientist, items):  # type: ignore[no-untyped-def]
    response = client_for(scientist).post(
        _item_url(items[0], "submit"), {"value": "1.5", "source": "experimental"}, HTTP_HX_REQUEST="true"
    )
    assert response["HX-Redirect"] == _item_url(items[1])


def test_a_bad_value_is_shown_inline_and_nothing_is_saved(client_for, scientist, items):  # type: ignore[no-untyped-def]
    c = client_for(scientist)
    response = c.post(_item_url(items[0], "submit"), {"value": "abc", "source": "experimental"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "value is not numeric" in body and 'aria-invalid="true"' in body
    fragment = c.post(_item_url(items[0], "submit"), {"value": "", "source": "experimental"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert "value is empty" in text and "<html" not in text and 'id="label-panel"' in text
    bad_source = c.post(_item_url(items[0], "submit"), {"value": "1", "source": "imported"})
    assert bad_source.status_code == 400
    assert not Measurement.objects.exists()


def test_a_label_given_by_someone_else_first_is_a_message_not_a_crash(client_for, scientist, lead, items):  # type: ignore[no-untyped-def]
    services.label_submit(item_id=items[0].pk, user=lead, value=1.0)
    response = client_for(scientist).post(_item_url(items[0], "submit"), {"value": "2", "source": "experimental"}, follow=True)
    assert response.status_code == 200
    assert "already labeled by lea-lead" in response.content.decode()
    items[0].refresh_from_db()
    assert items[0].label == 1.0


def test_skip_moves_on_and_a_second_skip_is_a_message(client_for, scientist, items):  # type: ignore[no-untyped-def]
    c = client_for(scientist)
    response = c.post(_item_url(items[0], "skip"))
    assert response["Location"] == _item_url(items[1])
    items[0].refresh_from_db()
    assert items[0].status == QueueStatus.SKIPPED
    again = c.post(_item_url(items[0], "skip"), follow=True)
    assert "Only open (pending or claimed) items can be skipped" in again.content.decode()


def test_a_skip_reason_over_5000_characters_is_refused_on_the_page_as_by_the_api(client_for, scientist, items):  # type: ignore[no-untyped-def]
    from labeling.models import AuditEvent

    page = client_for(scientist).post(_item_url(items[0], "skip"), {"notes": "x" * 5_000_000}, follow=True)
    assert "at most 5,000 are kept" in page.content.decode()
    items[0].refresh_from_db()
    assert items[0].status == QueueStatus.PENDING and not AuditEvent.objects.filter(item=items[0]).exists()


def test_viewers_cannot_label_or_skip(client_for, viewer, items):  # type: ignore[no-untyped-def]
    c = client_for(viewer)
    assert c.post(_item_url(items[0], "submit"), {"value": "1", "source": "experimental"}).status_code == 403
    assert c.post(_item_url(items[0], "skip")).status_code == 403
    items[0].refresh_from_db()
    assert items[0].status == QueueStatus.PENDING


def test_a_scientist_cannot_label_an_item_assigned_to_someone_else(client_for, scientist, other_scientist, items):  # type: ignore[no-untyped-def]
    LabelQueueItem.objects.filter(pk=items[0].pk).update(assigned_to=other_scientist)
    c = client_for(scientist)
    body = c.get(_item_url(items[0])).content.decode()
    assert "assigned to olga-scientist" in body and 'id="label-form"' not in body
    refused = c.post(_item_url(items[0], "submit"), {"value": "1", "source": "experimental"})
    assert refused.status_code == 403
    assert "This item is assigned to olga-scientist now; your value 1 was not saved." in refused.content.decode()
    skipped = c.post(_item_url(items[0], "skip"), follow=True)
    assert "your skip was not recorded" in skipped.content.decode()
    items[0].refresh_from_db()
    assert items[0].status == QueueStatus.PENDING and items[0].label is None


def test_an_htmx_save_of_an_item_taken_meanwhile_answers_in_the_label_panel(client_for, scientist, other_scientist, lead, items):  # type: ignore[no-untyped-def]
    c = client_for(scientist)
    services.queue_item_claim_next(user=other_scientist)  # items[0], open on the scientist's screen
    taken = c.post(_item_url(items[0], "submit"), {"value": "-3.3", "source": "experimental", "model": items[0].model_id},
                   HTTP_HX_REQUEST="true")
    body = taken.content.decode()
    # A 200 fragment, as for form errors: htmx swaps no 4xx, and a silent refusal is the defect.
    assert taken.status_code == 200 and body.lstrip().startswith('<article class="card" id="label-panel">')
    assert "olga-scientist took this item while you had it open; your value -3.3 was not saved." in body
    assert f'href="{LABELING}?model={items[0].model_id}">Your next item' in body
    services.queue_item_assign(item_id=items[1].pk, assignee_id=other_scientist.pk, user=lead)
    moved = c.post(_item_url(items[1], "submit"), {"value": "2", "source": "experimental"}, HTTP_HX_REQUEST="true")
    assert "lea-lead assigned this item to olga-scientist while you had it open; your value 2 was not saved." in moved.content.decode()
    assert not Measurement.objects.exists()


def test_a_conflict_keeps_the_model_filter(client_for, scientist, lead, items):  # type: ignore[no-untyped-def]
    services.label_submit(item_id=items[0].pk, user=lead, value=1.0)
    c = client_for(scientist)
    data = {"value": "2", "source": "experimental", "model": items[0].model_id}
    response = c.post(_item_url(items[0], "submit"), data, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == f"{_item_url(items[0])}?model={items[0].model_id}"
    page = c.get(response["HX-Redirect"]).content.decode()
    assert "already labeled by lea-lead. Your value 2 was not saved." in page


@pytest.mark.parametrize("name", ["item", "submit", "skip", "labeling"])
def test_item_pages_and_fragments_are_never_stored_by_the_browser(client_for, scientist, items, name):  # type: ignore[no-untyped-def]
    # Back after a save must ask the server again, not show the old editable form.
    c = client_for(scientist)
    if name == "labeling":
        response = c.get(LABELING)
    elif name == "item":
        response = c.get(_item_url(items[0]))
    else:
        response = c.post(_item_url(items[0], name), {"value": "x", "source": "experimental"}, HTTP_HX_REQUEST="true")
    assert "no-store" in response["Cache-Control"]


def test_an_expired_session_sends_htmx_to_login_and_back_to_the_page_shown(client, items):  # type: ignore[no-untyped-def]
    page = _item_url(items[0])
    response = client.post(
        _item_url(items[0], "submit"), {"value": "1"}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=f"http://testserver{page}"
    )
    # Not a 302 that htmx would follow and swap the login page into the label panel.
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/accounts/login/?next={page}"
    elsewhere = client.post(_item_url(items[0], "submit"), {}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="https://evil.example/x")
    assert elsewhere["HX-Redirect"] == "/accounts/login/?next=/"
    rows = client.get(reverse("labeling:queue") + "?status=all", HTTP_HX_REQUEST="true")
    assert rows["HX-Redirect"] == "/accounts/login/?next=/queue/%3Fstatus%3Dall"
    assert client.get(page)["Location"] == f"/accounts/login/?next={page}"  # plain pages as before


def test_labeled_items_show_their_label_read_only(client_for, scientist, lead, items):  # type: ignore[no-untyped-def]
    services.label_submit(item_id=items[0].pk, user=lead, value=-1.5, source="literature", confidence="low")
    body = client_for(scientist).get(_item_url(items[0])).content.decode()
    assert "-1.5" in body and "Literature" in body and 'id="label-form"' not in body


@pytest.mark.parametrize("name", ["item", "submit", "skip"])
def test_unknown_items_are_404(client_for, scientist, name):  # type: ignore[no-untyped-def]
    url = reverse(f"labeling:{name}", args=["00000000-0000-0000-0000-000000000000"])
    c = client_for(scientist)
    response = c.get(url) if name == "item" else c.post(url, {"value": "1", "source": "experimental"})
    assert response.status_code == 404


def test_forms_post_with_csrf_tokens(client_for, scientist, items):  # type: ignore[no-untyped-def]
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    c.force_login(scientist)
    assert c.post(_item_url(items[0], "submit"), {"value": "1", "source": "experimental"}).status_code == 403
    body = c.get(_item_url(items[0])).content.decode()
    assert body.count("csrfmiddlewaretoken") >= 2  # label form and skip form
    assert 'hx-headers=\'{"X-CSRFToken"' in body


def test_the_reasons_for_a_pick_say_they_date_from_the_selection_after_a_retrain(client_for, scientist, class_model):  # type: ignore[no-untyped-def]
    from mlmodels.models import MLModel
    from tests.factories import MLModelFactory

    picked = {"rank": 0, "score": 0.9, "predicted_class": 0, "p_top": 0.9, "model_version": 1}
    item = LabelQueueItemFactory(model=class_model, prediction=0.0, probabilities=[0.9, 0.05, 0.05], score_components=picked)
    body = client_for(scientist).get(_item_url(item)).content.decode()
    assert "values at selection (v1)" in body and "re-scored" not in body
    # Version 2 re-scored it: the header's prediction is v2's, the table stays v1's reasons.
    MLModel.objects.filter(pk=class_model.pk).update(status="superseded")
    v2 = MLModelFactory(name=class_model.name, assay=class_model.assay, version=2)
    LabelQueueItem.objects.filter(pk=item.pk).update(model=v2, prediction=2.0, probabilities=[0.1, 0.2, 0.7])
    body = client_for(scientist).get(_item_url(item)).content.decode()
    assert "Predicted <strong>high</strong>" in body
    assert "values at selection (v1)" in body and "are v2's. The table keeps the reasons v1 picked it." in body
    assert "<th class=\"num\">Value at selection</th>" in body


def test_a_classification_item_saved_without_a_class_says_pick_a_class(client_for, scientist, class_model):  # type: ignore[no-untyped-def]
    item = LabelQueueItemFactory(model=class_model, prediction=0.0, probabilities=[0.98, 0.01, 0.01])
    fragment = client_for(scientist).post(_item_url(item, "submit"), {"source": "experimental"}, HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert "pick a class" in body and "value is empty" not in body
    first_radio = body[body.index('type="radio"'):].split(">", 1)[0]
    assert "autofocus" in first_radio  # focus stays on the choices, not lost after the swap
    assert not Measurement.objects.exists()


def test_the_two_uncertainty_figures_of_a_classification_item_name_their_measure(client_for, scientist, class_model):  # type: ignore[no-untyped-def]
    import math

    entropy = 0.0627
    item = LabelQueueItemFactory(
        model=class_model, prediction=0.0, probabilities=[0.99, 0.005, 0.005], uncertainty=entropy,
        score_components={"uncertainty": entropy / math.log(3), "uncertainty_normalized": 0.4},
    )
    body = client_for(scientist).get(_item_url(item)).content.decode()
    assert "predictive entropy of the ensemble's mean probabilities 0.0627 nats (0.0571 of the maximum, ln 3" in body
    assert "Uncertainty (predictive entropy ÷ ln K: 0 sure, 1 uniform)" in body
