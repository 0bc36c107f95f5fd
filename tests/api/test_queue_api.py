"""Queue endpoints: list filters, pagination, detail, claim-next, label, skip, assign."""

from __future__ import annotations

from typing import Any

import pytest

from compounds.models import Measurement
from labeling.models import LabelQueueItem
from tests.factories import LabelQueueItemFactory, MeasurementFactory, MLModelFactory

pytestmark = pytest.mark.django_db
Q = "/api/active-learning/queue/"


@pytest.fixture
def model() -> Any:
    return MLModelFactory()


def test_the_queue_is_paginated_filtered_and_ordered_without_n_plus_1(api_for: Any, viewer: Any, scientist: Any, model: Any, django_assert_max_num_queries: Any) -> None:
    items = [LabelQueueItemFactory(model=model, uncertainty=i / 100) for i in range(55)]
    LabelQueueItem.objects.filter(pk__in=[i.pk for i in items[:3]]).update(assigned_to=scientist, status="in_progress")
    client = api_for(viewer)
    with django_assert_max_num_queries(6):
        page1 = client.get(Q, {"model": model.pk}).json()
    assert page1["count"] == 55 and len(page1["results"]) == 50 and page1["next"]
    assert len(client.get(Q, {"model": model.pk, "page": 2}).json()["results"]) == 5
    assert client.get(Q, {"page": 9}).status_code == 404
    mine = client.get(Q, {"assigned_to": scientist.pk}).json()
    assert mine["count"] == 3 and mine["results"][0]["assigned_to"]["username"] == scientist.username
    assert client.get(Q, {"assigned_to": "none"}).json()["count"] == 52
    assert client.get(Q, {"status": "in_progress"}).json()["count"] == 3
    assert client.get(Q, {"status": "open"}).json()["count"] == 55
    # Django's convention: a leading "-" is descending.
    unc = [r["uncertainty"] for r in client.get(Q, {"ordering": "-uncertainty"}).json()["results"]]
    assert unc == sorted(unc, reverse=True) and unc[0] == pytest.approx(0.54)
    unc = [r["uncertainty"] for r in client.get(Q, {"ordering": "uncertainty"}).json()["results"]]
    assert unc == sorted(unc) and unc[0] == 0
    best = [r["priority_score"] for r in client.get(Q, {"model": model.pk}).json()["results"]]
    assert best == sorted(best, reverse=True)
    assert client.get(Q, {"ordering": "-prediction"}).status_code == 200


def test_the_api_lists_the_queue_in_serving_order_earlier_batches_first(api_for, viewer):  # type: ignore[no-untyped-def]
    model = MLModelFactory()
    old = LabelQueueItemFactory(model=model, selection_batch=1, priority_score=0.4)
    new = LabelQueueItemFactory(model=model, selection_batch=2, priority_score=0.9)
    client = api_for(viewer)
    ids = [r["id"] for r in client.get(Q, {"model": model.pk}).json()["results"]]
    assert ids == [str(old.pk), str(new.pk)]  # default "-priority": the order claim-next serves
    ids = [r["id"] for r in client.get(Q, {"model": model.pk, "ordering": "priority"}).json()["results"]]
    assert ids == [str(new.pk), str(old.pk)]


@pytest.mark.parametrize("params", [{"status": "bogus"}, {"assigned_to": "someone"}, {"model": "x"}, {"cycle": "not-a-uuid"}, {"ordering": "name"}])
def test_bad_filters_are_400_naming_the_parameter(api_for: Any, viewer: Any, params: dict[str, str]) -> None:
    response = api_for(viewer).get(Q, params)
    assert response.status_code == 400
    assert response.json()["field"] == next(iter(params))


def test_item_detail_has_compound_prediction_history_and_similar_labeled_compounds(api_for: Any, viewer: Any, scientist: Any, model: Any) -> None:
    item = LabelQueueItemFactory(model=model, compound__smiles="CCCCO")
    MeasurementFactory(compound__smiles="CCCO", assay=model.assay, value=-0.5)
    api_for(scientist).post(f"{Q}claim-next/", {}, format="json")
    body = api_for(viewer).get(f"{Q}{item.pk}/").json()
    assert body["compound"]["inchikey"] == item.compound.inchikey
    assert body["compound"]["properties"]["heavy_atoms"] == 5
    assert body["structure_svg_url"] == f"/compounds/{item.compound_id}/structure.svg"
    assert body["prediction"] == 0.5 and body["uncertainty"] == 0.2
    assert body["similar"][0]["compound"]["canonical_smiles"] == "CCCO"
    assert body["similar"][0]["labels"][0]["value"] == -0.5
    assert [e["action"] for e in body["history"]] == ["claim"]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1"])
def test_unknown_or_malformed_item_ids_are_404(api_for: Any, lead: Any, bad_id: str) -> None:
    client = api_for(lead)
    assert client.get(f"{Q}{bad_id}/").status_code == 404
    assert client.post(f"{Q}{bad_id}/label/", {"value": 1}, format="json").status_code == 404
    assert client.post(f"{Q}{bad_id}/skip/", {}, format="json").status_code == 404


def test_claim_next_gives_the_best_item_then_says_the_queue_is_empty(api_for: Any, scientist: Any, model: Any) -> None:
    best = LabelQueueItemFactory(model=model, priority_score=9)
    LabelQueueItemFactory(model=model, priority_score=1, status="labeled", label=1.0)
    client = api_for(scientist)
    first = client.post(f"{Q}claim-next/", {"model": model.pk}, format="json").json()
    assert first["item"]["id"] == str(best.pk) and first["item"]["status"] == "in_progress"
    # Their own open work comes back first.
    assert client.post(f"{Q}claim-next/", {}, format="json").json()["item"]["id"] == str(best.pk)
    client.post(f"{Q}{best.pk}/skip/", {"reason": "unclear"}, format="json")
    empty = client.post(f"{Q}claim-next/", {}, format="json")
    assert empty.status_code == 200
    assert empty.json() == {"item": None, "detail": "queue empty"}


def test_label_creates_a_measurement_and_a_second_label_is_409(api_for: Any, scientist: Any, other_scientist: Any, model: Any) -> None:
    item = LabelQueueItemFactory(model=model)
    url = f"{Q}{item.pk}/label/"
    response = api_for(scientist).post(url, {"value": -2.5, "source": "literature", "confidence": "high", "notes": "n"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["label"]) == ("labeled", -2.5)
    m = Measurement.objects.get(queue_item=item)
    assert (m.value, m.source, m.created_by) == (-2.5, "literature", scientist)
    again = api_for(other_scientist).post(url, {"value": 1}, format="json")
    assert again.status_code == 409
    assert "already labeled" in again.json()["detail"]
    skip = api_for(scientist).post(f"{Q}{item.pk}/skip/", {}, format="json")
    assert skip.status_code == 409
    item.refresh_from_db()
    assert item.label == -2.5


def test_a_label_answers_with_the_stored_item_in_one_transaction_and_no_second_read(
    api_for: Any, scientist: Any, model: Any, django_assert_max_num_queries: Any
) -> None:
    item = LabelQueueItemFactory(model=model)
    client = api_for(scientist)
    # Token + roles, then BEGIN, the locked item with its relations, the measurement, the
    # item, the audit event, COMMIT: nothing is read again to answer.
    with django_assert_max_num_queries(8):
        response = client.post(f"{Q}{item.pk}/label/", {"value": -1.25}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    stored = LabelQueueItem.objects.select_related("compound", "model").get(pk=item.pk)
    assert body["label"] == stored.label == -1.25
    assert body["labeled_by"]["username"] == body["assigned_to"]["username"] == scientist.username
    assert body["compound"]["id"] == stored.compound_id and body["model"]["id"] == stored.model_id
    assert body["updated_at"].replace("Z", "+00:00") == stored.updated_at.isoformat()
    assert body["label_display"] == stored.model.assay.format_value(-1.25)


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "value"), ({"value": "abc"}, "value"), ({"value": True}, "value"), ({"value": 1, "source": "imported"}, "source"),
     ({"value": 1, "confidence": "very"}, "confidence"), ({"value": "nan"}, "value")],
)
def test_bad_label_payloads_are_400_naming_the_field(api_for: Any, scientist: Any, model: Any, payload: dict[str, Any], field: str) -> None:
    item = LabelQueueItemFactory(model=model)
    response = api_for(scientist).post(f"{Q}{item.pk}/label/", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field and body["detail"] and field in body["errors"]
    item.refresh_from_db()
    assert item.status == "pending"


def test_a_scientist_cannot_label_or_skip_someone_elses_item(api_for: Any, scientist: Any, other_scientist: Any, model: Any) -> None:
    item = LabelQueueItemFactory(model=model, assigned_to=other_scientist)
    client = api_for(scientist)
    assert client.post(f"{Q}{item.pk}/label/", {"value": 1}, format="json").status_code == 403
    assert client.post(f"{Q}{item.pk}/skip/", {}, format="json").status_code == 403


def test_a_lead_assigns_and_unassigns(api_for: Any, lead: Any, scientist: Any, viewer: Any, model: Any) -> None:
    item = LabelQueueItemFactory(model=model)
    client = api_for(lead)
    url = f"{Q}{item.pk}/assign/"
    assert client.post(url, {"user_id": scientist.pk}, format="json").json()["assigned_to"]["id"] == scientist.pk
    assert client.post(url, {"user_id": None}, format="json").json()["assigned_to"] is None
    bad = client.post(url, {"user_id": viewer.pk}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "user_id"
    assert client.post(url, {}, format="json").json()["field"] == "user_id"
    item.status = "skipped"
    item.save()
    assert client.post(url, {"user_id": scientist.pk}, format="json").status_code == 409


def test_malformed_json_is_400_and_unauthenticated_is_401(api_for: Any, scientist: Any, model: Any) -> None:
    item = LabelQueueItemFactory(model=model)
    response = api_for(scientist).post(f"{Q}{item.pk}/label/", "{nope", content_type="application/json")
    assert response.status_code == 400
    anon = api_for(None).get(Q)
    assert anon.status_code == 401 and anon["WWW-Authenticate"] == 'Token'
    bad_token = api_for(None)
    bad_token.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert bad_token.get(Q).status_code == 401


def test_page_size_is_chosen_by_the_client_capped_at_500_and_checked(api_for: Any, viewer: Any, model: Any) -> None:
    for i in range(12):
        LabelQueueItemFactory(model=model, uncertainty=i / 100)
    client = api_for(viewer)
    page = client.get(Q, {"model": model.pk, "page_size": 5}).json()
    assert page["count"] == 12 and len(page["results"]) == 5 and "page_size=5" in page["next"]
    assert len(client.get(Q, {"model": model.pk, "page_size": 5, "page": 3}).json()["results"]) == 2
    assert len(client.get(Q, {"model": model.pk, "page_size": 100_000}).json()["results"]) == 12
    for bad in ("0", "-3", "ten", "1.5", "٣"):
        response = client.get(Q, {"model": model.pk, "page_size": bad})
        assert response.status_code == 400 and response.json()["field"] == "page_size", bad
