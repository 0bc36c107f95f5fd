"""Pages that need a real trained model: selection preview/add, explanations, predictions."""

import pytest
from django.urls import reverse

from compounds.models import Compound
from cycles.models import ActiveLearningCycle
from labeling.models import LabelQueueItem
from tests.solubility import solubility_setup

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.ARTIFACT_ROOT = tmp_path
    return solubility_setup(labeled=40, pool=40, validation=20)


def test_preview_then_add_to_queue(client_for, lead, trained):  # type: ignore[no-untyped-def]
    model = trained["model"]
    c = client_for(lead)
    data = {"model": model.pk, "pool": "all", "strategy": "hybrid", "batch_size": 6, "batch": "diverse",
            "w_uncertainty": 0.6, "w_margin": 0.2, "w_applicability": 0.2, "seed": 0}
    preview = c.post(reverse("cycles:selection"), {**data, "action": "preview"}, HTTP_HX_REQUEST="true")
    body = preview.content.decode()
    assert preview.status_code == 200 and "<html" not in body
    assert "Preview: 6 of" in body and "Chemical-space map" in body and "proposed batch (6)" in body
    assert "labeled (training)" in body
    assert not ActiveLearningCycle.objects.exists()  # a preview writes nothing
    queued = c.post(reverse("cycles:selection"), {**data, "action": "queue"})
    cycle = ActiveLearningCycle.objects.get()
    assert queued["Location"] == f"{reverse('labeling:queue')}?cycle={cycle.pk}&model={model.pk}"
    assert cycle.strategy_params["weights"]["uncertainty"] == 0.6
    assert LabelQueueItem.objects.filter(cycle=cycle).count() == 6
    page = c.get(queued["Location"]).content.decode()
    assert "Cycle #1 opened: 6 compounds queued." in page and page.count('name="items"') == 6


def test_the_design_target_reaches_the_design_as_warm_up_or_as_the_strategy(client_for, lead, trained):  # type: ignore[no-untyped-def]
    model = trained["model"]  # trained on 40 compounds: still inside a 300-label warm-up
    c = client_for(lead)
    data = {"model": model.pk, "pool": "all", "strategy": "uncertainty", "batch_size": 5, "batch": "ranked_batch",
            "warmup": "variance_reduction", "warmup_until": 300, "design_target": "validation", "seed": 3,
            "action": "queue"}
    c.post(reverse("cycles:selection"), data)
    cycle = ActiveLearningCycle.objects.get()
    assert cycle.strategy_params["picked_by"] == "variance_reduction"
    assert cycle.strategy_params["warmup"]["params"]["target"] == "validation"
    # As the strategy itself; a target outside the choices is a form error, nothing opened.
    direct = {**data, "strategy": "variance_reduction", "batch": "top", "warmup": "", "warmup_until": "",
              "design_target": "both"}
    response = c.post(reverse("cycles:selection"), direct)
    assert response.status_code == 302
    direct_cycle = ActiveLearningCycle.objects.get(selection_strategy="variance_reduction")
    assert direct_cycle.strategy_params["target"] == "both"
    bad = c.post(reverse("cycles:selection"), {**direct, "design_target": "everything"})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()
    assert ActiveLearningCycle.objects.count() == 2

    # The design as the strategy after a label-free design warm-up, counting the members'
    # covariance (the schedule measured best in BENCHMARKS.md): recorded as posted.
    ens = {**data, "strategy": "variance_reduction", "batch": "top", "warmup": "variance_reduction",
           "warmup_until": 30, "design_ensemble_weight": 4}
    assert c.post(reverse("cycles:selection"), ens).status_code == 302
    ens_cycle = ActiveLearningCycle.objects.order_by("cycle_number").last()
    assert ens_cycle.strategy_params["ensemble_weight"] == 4.0
    assert ens_cycle.strategy_params["target"] == "validation"
    assert ens_cycle.strategy_params["warmup"]["params"]["target"] == "validation"
    assert "picked_by" not in ens_cycle.strategy_params  # 40 labels: past the 30-label warm-up
    # Without the weight the warm-up and the strategy are the same design: a form error.
    same = c.post(reverse("cycles:selection"), {**ens, "design_ensemble_weight": ""})
    assert same.status_code == 400 and same.context["form"].errors["warmup"]
    negative = c.post(reverse("cycles:selection"), {**ens, "design_ensemble_weight": -1})
    assert negative.status_code == 400 and negative.context["form"].errors["design_ensemble_weight"]
    assert ActiveLearningCycle.objects.count() == 3


def test_a_random_warm_up_is_applied_and_recorded(client_for, lead, trained):  # type: ignore[no-untyped-def]
    model = trained["model"]  # trained on 40 compounds: still inside a 300-label warm-up
    c = client_for(lead)
    data = {"model": model.pk, "pool": "all", "strategy": "uncertainty", "batch_size": 5, "batch": "ranked_batch",
            "warmup": "random", "warmup_until": 300, "seed": 3, "action": "queue"}
    c.post(reverse("cycles:selection"), data)
    cycle = ActiveLearningCycle.objects.get()
    assert cycle.strategy_params["warmup"] == {"strategy": "random", "until_labeled": 300, "params": {
        **cycle.strategy_params["warmup"]["params"]}}
    assert cycle.strategy_params["picked_by"] == "random"
    items = LabelQueueItem.objects.filter(cycle=cycle)
    assert items.count() == 5 and all(i.score_components["picked_by"] == "random" for i in items)
    during = c.post(reverse("cycles:selection"), {**data, "action": "preview"}, HTTP_HX_REQUEST="true")
    assert '<span class="comp">picked_by random</span>' in during.content.decode()
    assert "random (the warm-up of uncertainty, which takes over at 300 labels) on" in during.content.decode()
    # Past the warm-up (until 40 labels: the model has 40), uncertainty picks.
    preview = c.post(reverse("cycles:selection"), {**data, "warmup_until": 40, "action": "preview"},
                     HTTP_HX_REQUEST="true").content.decode()
    assert "Preview: 5 of" in preview and "picked_by" not in preview
    assert "uncertainty on" in preview and "batch mode ranked batch" in preview


def test_a_variance_reduction_warm_up_from_the_selection_tab(client_for, lead, trained):  # type: ignore[no-untyped-def]
    model = trained["model"]
    c = client_for(lead)
    data = {"model": model.pk, "pool": "all", "strategy": "uncertainty", "batch_size": 5, "batch": "ranked_batch",
            "warmup": "variance_reduction", "warmup_until": 300, "seed": 1, "action": "queue"}
    c.post(reverse("cycles:selection"), data)
    cycle = ActiveLearningCycle.objects.get()
    assert cycle.strategy_params["picked_by"] == "variance_reduction"
    items = LabelQueueItem.objects.filter(cycle=cycle)
    assert items.count() == 5
    assert all(i.score_components["picked_by"] == "variance_reduction" for i in items)
    assert all(i.score_components["variance_reduction_in_batch"] > 0 for i in items)
    # As the strategy itself: a preview lists the design's gain for each pick.
    preview = c.post(reverse("cycles:selection"), {**data, "strategy": "variance_reduction", "warmup": "",
                                                   "batch": "top", "action": "preview"}, HTTP_HX_REQUEST="true")
    assert preview.status_code == 200
    assert "Preview: 5 of" in preview.content.decode() and "variance_reduction_in_batch" in preview.content.decode()


def test_a_warm_up_without_its_label_count_is_a_form_error(client_for, lead, trained):  # type: ignore[no-untyped-def]
    data = {"model": trained["model"].pk, "pool": "all", "strategy": "uncertainty", "batch_size": 5, "batch": "top",
            "warmup": "random", "action": "queue"}
    response = client_for(lead).post(reverse("cycles:selection"), data)
    assert response.status_code == 400
    assert "Say until how many labels" in response.content.decode()
    assert not ActiveLearningCycle.objects.exists()


def test_pasted_smiles_report_bad_lines(client_for, lead, trained):  # type: ignore[no-untyped-def]
    data = {"model": trained["model"].pk, "pool": "list", "compounds": "CCCCCCCCO\nnot-a-smiles\nc1ccccc1CCN",
            "strategy": "uncertainty", "batch_size": 2, "batch": "top", "action": "preview"}
    before = Compound.objects.count()
    body = client_for(lead).post(reverse("cycles:selection"), data, HTTP_HX_REQUEST="true").content.decode()
    assert "1 listed line left out of the pool" in body and "not-a-smiles" in body
    # The preview draws the new structures itself and registers nothing.
    assert Compound.objects.count() == before
    assert body.count("new structure: registered when the batch is added to the queue") == 2
    assert body.count("<svg") >= 2 and "CCCCCCCCO" in body


def test_a_series_is_selected_from_the_selection_tab(client_for, lead, trained):  # type: ignore[no-untyped-def]
    data = {"model": trained["model"].pk, "pool": "all", "substructure": "c1ccc2ccccc2c1", "strategy": "uncertainty",
            "batch_size": 4, "batch": "top"}
    c = client_for(lead)
    preview = c.post(reverse("cycles:selection"), {**data, "action": "preview"}, HTTP_HX_REQUEST="true")
    assert "Preview: 4 of 25 eligible compounds" in preview.content.decode()  # 25 naphthalenes among the 40
    c.post(reverse("cycles:selection"), {**data, "action": "queue"})
    assert ActiveLearningCycle.objects.get().pool_description == "all unlabeled compounds containing c1ccc2ccccc2c1"

    bad = c.post(reverse("cycles:selection"), {**data, "substructure": "C(", "action": "queue"})
    assert bad.status_code == 400
    assert "Invalid substructure: not a valid SMARTS or SMILES pattern" in bad.content.decode()
    assert ActiveLearningCycle.objects.count() == 1


def test_explanations_and_predictions_of_a_trained_model(client_for, viewer, trained):  # type: ignore[no-untyped-def]
    model, compound_id = trained["model"], trained["pool_ids"][0]
    c = client_for(viewer)
    explain = c.get(reverse("mlmodels:explain", args=[model.pk, compound_id]), HTTP_HX_REQUEST="true").content.decode()
    assert "<svg" in explain and "Top feature" in explain
    # The atoms' total and share are stated, and the legend says what the colour scale is.
    assert "Atoms (total)" in explain and "of the explanation)" in explain
    assert "relative to this molecule's largest atom weight" in explain or "Atoms not coloured" in explain
    fragment = c.get(reverse("mlmodels:compound_predictions", args=[compound_id])).content.decode()
    assert "Predicted <strong>" in fragment and "95% interval" in fragment
    detail = c.get(reverse("mlmodels:detail", args=[model.pk])).content.decode()
    assert "Predicted against measured on the validation set" in detail
    assert c.get(reverse("mlmodels:artifact", args=[model.pk])).status_code == 200
