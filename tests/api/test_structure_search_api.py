"""Substructure and similarity search over the API (GET /api/compounds/)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_the_api_searches_by_substructure(api_for: Any, viewer: Any, library: dict[str, Any]) -> None:
    body = api_for(viewer).get("/api/compounds/", {"substructure": "C(=O)[OH]"}).json()
    assert [c["name"] for c in body["results"]] == ["acetic acid", "benzoic acid"]
    assert body["count"] == 2 and all(c["similarity"] is None for c in body["results"])
    assert body["search"] == {
        "mode": "substructure", "scanned": 7, "searchable": 7, "max_hits": 500, "hit_limit": False, "complete": True
    }


def test_the_api_searches_by_similarity(api_for: Any, viewer: Any, library: dict[str, Any]) -> None:
    body = api_for(viewer).get("/api/compounds/", {"similar_to": "CCc1ccccc1", "threshold": 0.3}).json()
    assert body["results"][0]["name"] == "ethylbenzene" and body["results"][0]["similarity"] == 1.0
    assert body["search"]["mode"] == "similarity"
    sims = [c["similarity"] for c in body["results"]]
    assert sims == sorted(sims, reverse=True) and min(sims) >= 0.3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"substructure": "C("}, "substructure"),
        ({"similar_to": "C1CC"}, "similar_to"),
        ({"similar_to": "CCO", "threshold": 1.5}, "threshold"),
        ({"similar_to": "CCO", "threshold": "high"}, "threshold"),
        ({"q": "benz", "substructure": "c1ccccc1"}, "substructure"),
        ({"substructure": "C", "similar_to": "CCO"}, "similar_to"),
    ],
)
def test_bad_structure_searches_are_400s_naming_the_field(
    api_for: Any, viewer: Any, library: dict[str, Any], params: dict[str, Any], field: str
) -> None:
    response = api_for(viewer).get("/api/compounds/", params)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_an_empty_structure_parameter_is_no_filter(api_for: Any, viewer: Any, library: dict[str, Any]) -> None:
    body = api_for(viewer).get("/api/compounds/", {"substructure": "", "similar_to": ""}).json()
    assert body["count"] == 7 and "search" not in body
