"""Which active models the compound page asks for a prediction (mlmodels.selectors.models_for_compound)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection

from mlmodels import selectors
from tests.factories import (
    AssayFactory,
    CompoundFactory,
    LabelQueueItemFactory,
    MeasurementFactory,
    MLModelFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_model() -> dict[str, Any]:
    """A model with 20 labels on its assay and 20 queue items, none of them the compound's."""
    model = MLModelFactory(name="busy")
    others = [CompoundFactory() for _ in range(20)]
    for compound in others:
        MeasurementFactory(compound=compound, assay=model.assay)
        LabelQueueItemFactory(compound=compound, model=model)
    return {"model": model, "others": others}


def test_measured_queued_and_unrelated_compounds_get_the_right_models(busy_model: dict[str, Any]) -> None:
    model = busy_model["model"]
    other = MLModelFactory(name="other", assay=AssayFactory())
    measured, queued, unrelated = CompoundFactory(), CompoundFactory(), CompoundFactory()
    MeasurementFactory(compound=measured, assay=model.assay)
    MeasurementFactory(compound=measured, assay=model.assay, value=2.0)  # a replicate: still one model
    LabelQueueItemFactory(compound=queued, model=other)
    MLModelFactory(name="retired", assay=model.assay, status="superseded")

    assert selectors.models_for_compound(compound=measured) == [model]
    assert selectors.models_for_compound(compound=queued) == [other]
    assert selectors.models_for_compound(compound=unrelated) == [model, other]  # none relevant: all active


def _rows_read(queryset: Any) -> int:
    """The most rows any step of the query's plan produced (EXPLAIN ANALYZE)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node: dict[str, Any]) -> int:
        own = int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))
        return max([own, *(walk(child) for child in node.get("Plans", []))])

    return walk(plan[0]["Plan"])


def test_the_query_does_not_multiply_labels_by_queue_items(busy_model: dict[str, Any]) -> None:
    """Joining a model to its assay's labels and its queue items made labels x items rows
    (38M and 1.3 s per compound page on the 1M benchmark); EXISTS reads each side once."""
    compound = busy_model["others"][0]
    assert _rows_read(selectors.models_relevant_to(compound=compound)) < 20 * 20
