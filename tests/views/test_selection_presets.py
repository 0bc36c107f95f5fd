import re

import pytest
from django.urls import reverse

from mlmodels.ml import presets
from tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db


def _selected(body: str) -> str:
    match = re.search(r'<option value="([a-z_]+)"[^>]*selected', body)
    assert match, "no strategy preselected"
    return match.group(1)


def test_the_selection_tab_marks_and_preselects_the_benchmarked_strategies(client_for, lead):  # type: ignore[no-untyped-def]
    MLModelFactory()
    body = client_for(lead).get(reverse("cycles:selection")).content.decode()
    for preset, goal in ((presets.MODEL_IMPROVEMENT, "improve the model"), (presets.HIT_FINDING, "find the best")):
        label = preset["strategy"].replace("_", " ").capitalize()
        assert f"{label} (recommended to {goal})" in body
    assert ">UCB<" in body and ">Bald<" not in body  # acronyms keep their capitals
    assert _selected(body) == presets.MODEL_IMPROVEMENT["strategy"]


def test_a_hit_finding_model_preselects_the_hit_finding_strategy(client_for, lead):  # type: ignore[no-untyped-def]
    MLModelFactory(featurizer=presets.HIT_FINDING["featurizer"])
    body = client_for(lead).get(reverse("cycles:selection")).content.decode()
    assert _selected(body) == presets.HIT_FINDING["strategy"]


def test_the_preset_batch_mode_is_preselected_too(client_for, lead):  # type: ignore[no-untyped-def]
    MLModelFactory()
    body = client_for(lead).get(reverse("cycles:selection")).content.decode()
    batch = presets.MODEL_IMPROVEMENT["params"].get("batch", "top")
    assert re.search(rf'<option value="{batch}"[^>]*selected', body)


def test_the_preset_warm_up_is_preselected_and_sent_with_the_selection(client_for, lead):  # type: ignore[no-untyped-def]
    MLModelFactory()
    warmup = presets.MODEL_IMPROVEMENT["params"]["warmup"]
    body = client_for(lead).get(reverse("cycles:selection")).content.decode()
    assert re.search(rf'<option value="{warmup["strategy"]}"[^>]*selected', body)
    assert f'name="warmup_until" min="1" value="{warmup["until_labeled"]}"' in body
    # Where the design aims (the preset: the validation compounds) is preselected as well.
    target_select = body.split('<select name="design_target">')[1].split("</select>")[0]
    assert re.search(rf'<option value="{warmup["params"]["target"]}"[^>]*selected', target_select)
    # And the strategy's own ensemble covariance weight.
    weight = presets.MODEL_IMPROVEMENT["params"]["ensemble_weight"]
    assert f'name="design_ensemble_weight" value="{weight}"' in body


def test_a_classification_model_gets_the_selection_without_the_warm_up(client_for, lead, class_model):  # type: ignore[no-untyped-def]
    body = client_for(lead).get(reverse("cycles:selection"), {"model": class_model.pk}).content.decode()
    assert _selected(body) == presets.CLASSIFICATION_IMPROVEMENT["strategy"]
    assert "warmup" not in presets.CLASSIFICATION_IMPROVEMENT["params"]
    warmup_select = body.split('<select name="warmup">')[1].split("</select>")[0]
    assert "selected" not in warmup_select  # the first option, "none", shows
    assert 'name="warmup_until" min="1" value=""' in body


def test_a_classification_model_is_offered_only_what_classification_supports(client_for, lead, class_model):  # type: ignore[no-untyped-def]
    c = client_for(lead)
    body = c.get(reverse("cycles:selection"), {"model": class_model.pk}).content.decode()
    warmup_select = body.split('<select name="warmup">')[1].split("</select>")[0]
    assert 'value="variance_reduction"' in warmup_select and 'value="greedy_sampling"' not in warmup_select
    assert 'name="beta"' not in body and 'name="xi"' not in body  # UCB and EI are regression strategies
    # A posted greedy warm-up is a form error on the field, not a 400 after the fact.
    response = c.post(reverse("cycles:selection"), {
        "model": class_model.pk, "pool": "all", "strategy": "uncertainty", "batch_size": 5, "batch": "top",
        "warmup": "greedy_sampling", "warmup_until": 50, "action": "preview",
    })
    assert response.status_code == 400 and response.context["form"].errors["warmup"]


def test_a_regression_model_keeps_its_warm_ups_and_parameters(client_for, lead):  # type: ignore[no-untyped-def]
    model = MLModelFactory()
    body = client_for(lead).get(reverse("cycles:selection"), {"model": model.pk}).content.decode()
    warmup_select = body.split('<select name="warmup">')[1].split("</select>")[0]
    assert 'value="greedy_sampling"' in warmup_select
    assert 'name="beta"' in body and 'name="xi"' in body
    # Changing the model swaps the warm-up, design and tuning fields too, not only the strategy list.
    assert 'hx-select-oob="#warmup-fields,#design-fields,#tuning-fields"' in body
    assert 'id="warmup-fields"' in body and 'id="design-fields"' in body and 'id="tuning-fields"' in body
