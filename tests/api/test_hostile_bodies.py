"""Hostile JSON bodies on every JSON endpoint: a 400 or 413 with a JSON body, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from compounds.models import Measurement
from tests.factories import LabelQueueItemFactory

pytestmark = pytest.mark.django_db
AL = "/api/active-learning"
HUGE = "1" + "0" * 400  # an integer literal far beyond float range


@pytest.fixture
def item() -> Any:
    return LabelQueueItemFactory()


def _endpoints(item: Any) -> list[str]:
    return [
        f"{AL}/select/", f"{AL}/queue/claim-next/", f"{AL}/queue/{item.pk}/label/", f"{AL}/queue/{item.pk}/skip/",
        f"{AL}/queue/{item.pk}/correct/", f"{AL}/queue/{item.pk}/assign/", "/api/assays/", "/api/compounds/",
        "/api/measurements/", f"/api/models/{item.model_id}/predict/",
    ]


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000], ids=["deep-list", "deep-dict"])
def test_deeply_nested_json_is_a_400(api_for: Any, lead: Any, item: Any, body: str) -> None:
    client = api_for(lead)
    for url in _endpoints(item):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (url, response.content[:200])
        assert "nested too deeply" in response.json()["detail"], url


def test_an_integer_beyond_float_range_is_a_400_naming_the_field(api_for: Any, lead: Any, scientist: Any, item: Any) -> None:
    sci = api_for(scientist)
    response = sci.post(f"{AL}/queue/{item.pk}/label/", f'{{"value": {HUGE}}}', content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "value", response.content
    response = sci.post("/api/measurements/", f'{{"compound": {item.compound_id}, "assay": {item.model.assay_id}, "value": {HUGE}}}',
                        content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "value", response.content
    response = api_for(lead).post("/api/assays/", f'{{"name": "x", "min_value": -{HUGE}}}', content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "min_value"
    assert not Measurement.objects.exists()


def test_a_strategy_parameter_beyond_float_range_is_a_400_naming_it(api_for: Any, trained: dict[str, Any]) -> None:
    boss = api_for(trained["lead"])
    for strategy, params, field in (("ucb", {"beta": "HUGE"}, "params.beta"), ("hybrid", {"weights": {"uncertainty": "HUGE"}}, "params.weights")):
        body = json.dumps({"model": trained["model"].pk, "strategy": strategy, "batch_size": 2, "params": params})
        response = boss.post(f"{AL}/select/", body.replace('"HUGE"', HUGE), content_type="application/json")
        assert response.status_code == 400 and response.json()["field"] == field, response.content


def test_a_lone_surrogate_echoed_in_an_error_still_gives_json(api_for: Any, lead: Any, scientist: Any, item: Any) -> None:
    sci = api_for(scientist)
    response = sci.post(f"{AL}/queue/{item.pk}/label/", '{"value": 1, "source": "\\ud800"}', content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "source"
    response = api_for(lead).post(f"{AL}/select/", f'{{"model": {item.model_id}, "strategy": "\\ud800x"}}', content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "strategy"


def test_a_body_over_the_limit_is_a_json_413(api_for: Any, lead: Any, item: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    body = json.dumps({"model": item.model_id, "pool": {"kind": "smiles", "smiles": ["C" * 4000] * 400}})
    response = api_for(lead).post(f"{AL}/select/", body, content_type="application/json")
    assert response.status_code == 413 and "larger than 1 MB" in response.json()["detail"]


def test_the_api_answers_json_to_a_browser(api_for: Any, viewer: Any, item: Any) -> None:
    client = api_for(viewer)
    for url in ("/api/models/", "/api/compounds/", "/api/assays/", "/api/measurements/", f"{AL}/queue/", f"{AL}/cycles/"):
        response = client.get(url, HTTP_ACCEPT="text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        assert response.status_code == 200 and response["Content-Type"] == "application/json", url
