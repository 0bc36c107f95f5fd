"""The whole loop on PostgreSQL + Redis with real `rqworker` processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.db import IntegrityError

from compounds.chemistry import fingerprints_to_matrix, tanimoto
from compounds.models import Compound, Measurement
from config.exceptions import Conflict, PermissionDenied, ServiceUnavailable, ValidationFailed
from cycles import services
from cycles.models import ActiveLearningCycle, Job
from cycles.services.selection import PoolSpec, pool_queryset
from labeling import services as queue_services
from labeling.models import AuditEvent, LabelQueueItem
from mlmodels import services as model_services
from mlmodels.ml.features import featurize_smiles
from mlmodels.models import MLModel
from mlmodels.selectors import metrics_headline
from tests.conftest import worker_env
from tests.solubility import solubility_setup

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(settings, tmp_path, lead, scientist):  # type: ignore[no-untyped-def]
    settings.ARTIFACT_ROOT = tmp_path
    data = solubility_setup()
    data.update(lead=lead, scientist=scientist)
    return data


def _label(data, cycle, n):  # type: ignore[no-untyped-def]
    items = list(LabelQueueItem.objects.filter(cycle=cycle, status="pending").order_by("-priority_score")[:n])
    for item in items:
        queue_services.label_submit(
            item_id=item.pk, user=data["scientist"], value=data["truth"][item.compound_id], source="experimental"
        )
    return items


def test_select_creates_a_cycle_and_queue_items_that_say_why(setup):  # type: ignore[no-untyped-def]
    result = services.cycle_select(model=setup["model"], user=setup["lead"], strategy="hybrid", batch_size=15)
    cycle = result.cycle
    assert cycle.cycle_number == 1
    assert cycle.status == "labeling"
    assert cycle.items_selected == 15
    items = LabelQueueItem.objects.filter(cycle=cycle)
    assert items.count() == 15
    item = items.first()
    assert {"uncertainty", "margin", "applicability", "score"} <= set(item.score_components)
    # The version that picked it, so the labeling page can tell a later re-scoring apart.
    assert item.score_components["model_version"] == setup["model"].version
    assert item.prediction is not None and item.uncertainty is not None
    # Never a labeled or validation compound.
    assert set(items.values_list("compound_id", flat=True)) <= set(setup["pool_ids"])


def test_a_repeated_selection_never_queues_a_compound_twice(setup):  # type: ignore[no-untyped-def]
    first = services.cycle_select(model=setup["model"], user=setup["lead"], strategy="uncertainty", batch_size=20)
    second = services.cycle_select(model=setup["model"], user=setup["lead"], strategy="uncertainty", batch_size=20)
    a = set(LabelQueueItem.objects.filter(cycle=first.cycle).values_list("compound_id", flat=True))
    b = set(LabelQueueItem.objects.filter(cycle=second.cycle).values_list("compound_id", flat=True))
    assert a.isdisjoint(b)
    assert second.cycle.cycle_number == 2
    # And the database refuses a duplicate open row outright.
    item = LabelQueueItem.objects.filter(cycle=first.cycle).first()
    with pytest.raises(IntegrityError):
        LabelQueueItem.objects.create(
            compound_id=item.compound_id, model=item.model, selection_strategy="x", selection_batch=99
        )


def test_preview_writes_nothing_and_viewers_cannot_select(setup, viewer):  # type: ignore[no-untyped-def]
    result = services.cycle_select(model=setup["model"], user=setup["lead"], batch_size=5, preview=True)
    assert len(result.candidates) == 5
    assert not ActiveLearningCycle.objects.exists()
    with pytest.raises(PermissionDenied):
        services.cycle_select(model=setup["model"], user=viewer, batch_size=5)


def test_bad_strategy_parameters_are_refused_naming_the_field(setup):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as exc:
        services.cycle_select(model=setup["model"], user=setup["lead"], strategy="hybrid", batch_size=5,
                              params={"weights": {"uncertainty": -1}})
    assert exc.value.extra["field"] == "weights"
    with pytest.raises(ValidationFailed):
        services.cycle_select(model=setup["model"], user=setup["lead"], strategy="nope", batch_size=5)
    with pytest.raises(ValidationFailed):
        services.cycle_select(model=setup["model"], user=setup["lead"], batch_size=0)


def test_greedy_sampling_measures_distances_to_the_models_own_training_values(setup):  # type: ignore[no-untyped-def]
    model = setup["model"]
    result = services.cycle_select(model=model, user=setup["lead"], strategy="greedy_sampling", batch_size=5,
                                   preview=True)
    assert len(result.candidates) == 5
    first = result.candidates[0]
    assert {"gs_distance", "gs_distance_to_labeled"} <= set(first.score_components)
    # By hand: min over the training compounds of (1 - Tanimoto) x |prediction - measured value|,
    # so labeled values that were misaligned with their fingerprints would show here.
    training = Measurement.objects.filter(
        assay=model.assay, compound_id__in=model_services.model_load(model=model).training_ids
    ).values_list("compound__fingerprint", "value")
    fps = fingerprints_to_matrix([fp for fp, _ in training])
    values = np.array([v for _, v in training])
    sims = tanimoto(np.frombuffer(bytes(first.compound.fingerprint), dtype=np.uint8), fps)
    expected = float(np.min((1.0 - sims) * np.abs(first.prediction - values)))
    assert first.priority_score == pytest.approx(expected, rel=1e-6)


def test_variance_reduction_designs_over_the_models_own_features(setup):  # type: ignore[no-untyped-def]
    model = setup["model"]
    art = model_services.model_load(model=model)
    X_train = model_services.model_training_features(art=art)
    assert X_train.shape[0] == len(art.training_ids)
    # Row i is training compound i as the members see it: its input from stored features,
    # then the prior's columns, the ones the model's kernel weighs more.
    first = Compound.objects.get(pk=art.training_ids[0])
    expected = art.ensemble.member_input(featurize_smiles([first.canonical_smiles], art.feature_spec))[0]
    extra = len(art.ensemble.member_feature_names_extra)
    assert extra > 0 and X_train.shape[1] == art.feature_spec.n_features + extra
    np.testing.assert_allclose(X_train[0], expected, rtol=1e-5, equal_nan=True)
    weights = art.ensemble.kernel_column_weights(X_train.shape[1])
    assert weights is not None and set(weights[-extra:]) == {art.ensemble.smooth_prior_weight}
    assert set(weights[:-extra]) == {1.0}
    # The pool's rows come the same way, with the same weights, from the stored features.
    pool = model_services.model_score_compounds(model=model, compound_ids=art.training_ids[:3], with_features=True)
    row = int(np.flatnonzero(pool.ids == art.training_ids[0])[0])
    np.testing.assert_allclose(pool.features[row], X_train[0], rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(pool.feature_weights, weights)

    eligible = pool_queryset(model=model, pool=PoolSpec())[0].count()
    result = services.cycle_select(model=model, user=setup["lead"], strategy="variance_reduction", batch_size=6)
    assert len(result.candidates) == 6
    # A pool under FEATURE_POOL_CAP is designed over whole.
    assert "pool_sample" not in result.params
    assert result.pool_size == eligible
    gains = [c.score_components["variance_reduction_in_batch"] for c in result.candidates]
    assert all(g > 0 for g in gains)
    assert result.cycle.selection_strategy == "variance_reduction"
    assert {c.compound.pk for c in result.candidates} <= set(setup["pool_ids"])


def test_variance_reduction_sees_a_seeded_sample_of_a_big_pool(setup, monkeypatch):  # type: ignore[no-untyped-def]
    from cycles.services import selection

    monkeypatch.setattr(selection, "FEATURE_POOL_CAP", 40)
    runs = [
        services.cycle_select(model=setup["model"], user=setup["lead"], strategy="variance_reduction",
                              batch_size=5, random_state=7, preview=True)
        for _ in range(2)
    ]
    assert runs[0].pool_size == 40
    assert runs[0].params["pool_sample"] == 40 and runs[0].params["pool_sample_by"] == "random"
    # The same seed draws the same sample and so the same batch.
    assert [c.compound.pk for c in runs[0].candidates] == [c.compound.pk for c in runs[1].candidates]


def test_a_design_that_counts_the_members_chooses_among_the_most_uncertain_of_a_big_pool(setup, monkeypatch):  # type: ignore[no-untyped-def]
    from cycles.services import selection

    model = setup["model"]
    monkeypatch.setattr(selection, "FEATURE_POOL_CAP", 40)
    qs = pool_queryset(model=model, pool=PoolSpec())[0]
    whole = model_services.model_score_compounds(model=model, queryset=qs, with_fingerprints=False)
    assert whole.ids.size > 40
    most_uncertain = set(whole.ids[np.argsort(-whole.std, kind="stable")[:40]].tolist())
    params = {"target": "validation", "ensemble_weight": 4.0}
    result = services.cycle_select(model=model, user=setup["lead"], strategy="variance_reduction", batch_size=5,
                                   params=params, random_state=1, preview=True)
    assert result.pool_size == 40
    assert result.params["pool_sample"] == 40 and result.params["pool_sample_by"] == "uncertainty"
    assert {c.compound.pk for c in result.candidates} <= most_uncertain
    # Whatever the seed: the cut is the ensemble's, not a draw.
    again = services.cycle_select(model=model, user=setup["lead"], strategy="variance_reduction", batch_size=5,
                                  params=params, random_state=2, preview=True)
    assert [c.compound.pk for c in again.candidates] == [c.compound.pk for c in result.candidates]

    # The default schedule: while its label-free warm-up picks, the sample is a draw (that
    # stage does not look at the fit); once it has handed over, the ensemble's cut.
    n_training = len(model_services.model_load(model=model).training_ids)
    schedule = {**params, "warmup": {"strategy": "variance_reduction", "until_labeled": n_training + 1,
                                     "params": {"target": "validation"}}}
    during = services.cycle_select(model=model, user=setup["lead"], strategy="variance_reduction", batch_size=5,
                                   params=schedule, random_state=1, preview=True)
    assert during.params["picked_by"] == "variance_reduction" and during.params["pool_sample_by"] == "random"
    schedule["warmup"]["until_labeled"] = n_training
    after = services.cycle_select(model=model, user=setup["lead"], strategy="variance_reduction", batch_size=5,
                                  params=schedule, random_state=1, preview=True)
    assert "picked_by" not in after.params and after.params["pool_sample_by"] == "uncertainty"
    assert [c.compound.pk for c in after.candidates] == [c.compound.pk for c in result.candidates]


def test_a_design_can_aim_at_the_lineages_validation_compounds(setup):  # type: ignore[no-untyped-def]
    model = setup["model"]
    X_val, members = model_services.model_validation_features(model=model)
    assert members is None  # only when asked for
    art = model_services.model_load(model=model)
    # One row per validation compound, as the members see it (structure only: no value is read).
    assert X_val.shape == (len(setup["validation_ids"]), model_services.model_training_features(art=art).shape[1])
    first = Compound.objects.get(pk=min(setup["validation_ids"]))
    expected = art.ensemble.member_input(featurize_smiles([first.canonical_smiles], art.feature_spec))[0]
    np.testing.assert_allclose(X_val[0], expected, rtol=1e-5, equal_nan=True)

    schedule = {"batch": "ranked_batch", "warmup": {"strategy": "variance_reduction", "until_labeled": 10_000}}
    picks = {}
    for target in ("pool", "validation"):
        params = {**schedule, "warmup": {**schedule["warmup"], "params": {"target": target}}}
        result = services.cycle_select(model=model, user=setup["lead"], strategy="uncertainty", batch_size=6,
                                       params=params, preview=True)
        assert result.params["warmup"]["params"]["target"] == target
        picks[target] = [c.compound.pk for c in result.candidates]
        # The validation compounds are the design's target, never its picks.
        assert not set(picks[target]) & set(setup["validation_ids"])
    assert picks["pool"] != picks["validation"]

    # With the members' covariance: the pool and the validation compounds are scored with
    # their members (the same predictions the model makes), and the design uses them.
    X_again, val_members = model_services.model_validation_features(model=model, with_members=True)
    np.testing.assert_array_equal(X_again, X_val)
    assert val_members.shape == (art.ensemble.n_members, len(setup["validation_ids"]))
    np.testing.assert_allclose(val_members.mean(axis=0), art.ensemble.predict(
        featurize_smiles([c.canonical_smiles for c in Compound.objects.filter(pk__in=setup["validation_ids"])
                          .order_by("pk")], art.feature_spec)).mean, rtol=1e-5)
    ens_params = {**schedule, "warmup": {**schedule["warmup"],
                                         "params": {"target": "validation", "ensemble_weight": 3.0}}}
    ens = services.cycle_select(model=model, user=setup["lead"], strategy="uncertainty", batch_size=6,
                                params=ens_params, preview=True)
    assert ens.params["warmup"]["params"]["ensemble_weight"] == 3.0
    assert not {c.compound.pk for c in ens.candidates} & set(setup["validation_ids"])
    assert [c.compound.pk for c in ens.candidates] != picks["validation"]

    # A validation set with no compounds: a 400 naming the parameter, nothing opened.
    model.validation_set.compounds.clear()
    assert model_services.model_validation_features(model=model) == (None, None)
    with pytest.raises(ValidationFailed) as err:
        services.cycle_select(model=model, user=setup["lead"], strategy="variance_reduction", batch_size=6,
                              params={"target": "validation"})
    assert err.value.extra["field"] == "target"
    assert not ActiveLearningCycle.objects.filter(model=model).exists()


def test_a_finished_design_warm_up_no_longer_samples_the_pool(setup, monkeypatch):  # type: ignore[no-untyped-def]
    """The model-improvement preset's schedule (design, then uncertainty): once the model
    has its `until_labeled` labels the uncertainty stage ranks the whole pool, not the
    design's feature sample of it."""
    from cycles.services import selection

    monkeypatch.setattr(selection, "FEATURE_POOL_CAP", 40)
    model = setup["model"]
    n_training = len(model_services.model_load(model=model).training_ids)
    eligible = pool_queryset(model=model, pool=PoolSpec())[0].count()
    assert eligible > 40
    warmup = {"strategy": "variance_reduction", "until_labeled": n_training + 1}
    during = services.cycle_select(model=model, user=setup["lead"], strategy="uncertainty", batch_size=4,
                                   params={"warmup": warmup}, random_state=3, preview=True)
    assert during.params["picked_by"] == "variance_reduction"
    assert during.pool_size == 40 and during.params["pool_sample"] == 40

    after = services.cycle_select(model=model, user=setup["lead"], strategy="uncertainty", batch_size=4,
                                  params={"warmup": {**warmup, "until_labeled": n_training}}, random_state=3,
                                  preview=True)
    assert "picked_by" not in after.params and "pool_sample" not in after.params
    assert after.pool_size == eligible
    plain = services.cycle_select(model=model, user=setup["lead"], strategy="uncertainty", batch_size=4, preview=True)
    assert [c.compound.pk for c in after.candidates] == [c.compound.pk for c in plain.candidates]


def test_a_warm_up_schedule_loads_what_its_warm_up_strategy_needs(setup):  # type: ignore[no-untyped-def]
    model = setup["model"]
    n_training = len(model_services.model_load(model=model).training_ids)
    warmup = {"strategy": "greedy_sampling", "until_labeled": n_training + 1}
    # uncertainty alone needs neither fingerprints nor training values; its warm-up needs both.
    result = services.cycle_select(model=model, user=setup["lead"], strategy="uncertainty", batch_size=4,
                                   params={"warmup": warmup})
    assert result.strategy == "uncertainty"
    assert result.params["picked_by"] == "greedy_sampling"
    assert all(c.score_components["picked_by"] == "greedy_sampling" for c in result.candidates)
    assert all("gs_distance" in c.score_components for c in result.candidates)
    assert result.cycle.strategy_params["warmup"]["until_labeled"] == n_training + 1
    # Past the warm-up the strategy asked for picks: the 4 highest uncertainties.
    after = services.cycle_select(model=model, user=setup["lead"], strategy="uncertainty", batch_size=4,
                                  params={"warmup": {**warmup, "until_labeled": n_training}}, preview=True)
    assert "picked_by" not in after.params
    plain = services.cycle_select(model=model, user=setup["lead"], strategy="uncertainty", batch_size=4, preview=True)
    assert [c.compound.pk for c in after.candidates] == [c.compound.pk for c in plain.candidates]


def test_a_bad_warm_up_schedule_is_a_validation_error_naming_it(setup):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as err:
        services.cycle_select(model=setup["model"], user=setup["lead"], strategy="uncertainty", batch_size=4,
                              params={"warmup": {"strategy": "greedy_sampling", "until_labeled": -1}})
    assert err.value.extra["field"] == "warmup"


def test_a_pasted_smiles_preview_writes_nothing_and_adding_registers(setup):  # type: ignore[no-untyped-def]
    known = Compound.objects.exclude(pk__in=setup["validation_ids"]).exclude(measurements__isnull=False).first()
    pasted = ("CCCCCCCCCCO", "nonsense", "c1ccc(O)cc1CCCN", known.canonical_smiles)
    before = Compound.objects.count()
    preview = services.cycle_select(
        model=setup["model"], user=setup["lead"], batch_size=3, preview=True, pool=PoolSpec(kind="smiles", smiles=pasted)
    )
    assert Compound.objects.count() == before  # a preview keeps nothing, not even the structures
    assert preview.pool_size == 3
    assert [e["row"] for e in preview.pool_errors] == [2]
    by_smiles = {c.compound.canonical_smiles: c for c in preview.candidates}
    assert by_smiles[known.canonical_smiles].registered and by_smiles[known.canonical_smiles].compound.pk == known.pk
    new = [c for c in preview.candidates if not c.registered]
    assert len(new) == 2 and all(c.compound.pk is None for c in new)

    added = services.cycle_select(
        model=setup["model"], user=setup["lead"], batch_size=3, pool=PoolSpec(kind="smiles", smiles=pasted)
    )
    assert Compound.objects.count() == before + 2
    assert {c.compound.canonical_smiles for c in added.candidates} == set(by_smiles)
    assert added.cycle.items.count() == 3


def test_a_preview_of_only_bad_smiles_names_the_field(setup):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as err:
        services.cycle_select(model=setup["model"], user=setup["lead"], batch_size=2, preview=True,
                              pool=PoolSpec(kind="smiles", smiles=("nonsense", "C((")))
    assert err.value.extra["field"] == "smiles" and len(err.value.extra["pool_errors"]) == 2


def test_the_full_cycle_through_a_real_worker(setup, run_worker):  # type: ignore[no-untyped-def]
    model = setup["model"]
    cycle = services.cycle_select(model=model, user=setup["lead"], strategy="uncertainty", batch_size=20).cycle
    labeled = _label(setup, cycle, 10)

    job = services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])
    cycle.refresh_from_db()
    assert cycle.status == "training"
    assert job.rq_job_id == str(job.pk)
    run_worker()

    cycle.refresh_from_db()
    model.refresh_from_db()
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert cycle.status == "complete"
    new = cycle.result_model
    assert (model.status, new.status, new.version, new.parent_id) == ("superseded", "active", 2, model.pk)
    # Before/after on the same frozen validation compounds.
    assert cycle.metrics_before["n"] == cycle.metrics_after["n"] == len(setup["validation_ids"])
    assert new.validation_set_id == model.validation_set_id
    assert new.training_size == model.training_size + 10
    # Labeled items archived with the old version; pending ones re-scored and moved.
    for item in labeled:
        item.refresh_from_db()
        assert (item.status, item.model_id) == ("archived", model.pk)
    # The 10 still pending go on in cycle 2 (labeling, on the new version), so their labels
    # count for the cycle that will learn them and a lead can retrain from it.
    assert not LabelQueueItem.objects.filter(cycle=cycle, status="pending").exists()
    successor = ActiveLearningCycle.objects.get(cycle_number=2)
    assert (successor.status, successor.model_id, successor.items_selected) == ("labeling", new.pk, 10)
    assert successor.selection_strategy == cycle.selection_strategy and "cycle #1" in successor.pool_description
    pending = LabelQueueItem.objects.filter(cycle=successor, status="pending")
    assert pending.count() == 10
    assert set(pending.values_list("model_id", flat=True)) == {new.pk}
    assert set(pending.values_list("selection_batch", flat=True)) == {1}
    _label(setup, successor, 10)
    successor.refresh_from_db()
    cycle.refresh_from_db()
    assert (cycle.items_labeled, successor.items_labeled) == (10, 10)
    assert services.cycle_retrain_trigger(cycle_id=successor.pk, user=setup["lead"], inline=True).status == "succeeded"
    successor.refresh_from_db()
    assert successor.status == "complete" and successor.result_model.version == 3
    stats = services.cycle_stats(model=new)
    by_number = {c["cycle_number"]: c for c in stats["cycles"]}
    assert by_number[1]["primary_before"] == model.metrics["rmse"]
    assert by_number[1]["primary_after"] == new.metrics["rmse"]
    assert [p["version"] for p in stats["learning_curve"]] == [1, 2, 3]


def test_a_selection_a_skip_and_a_retrain_are_audit_events_with_who_and_what(setup, rq_queue):  # type: ignore[no-untyped-def]
    cycle = services.cycle_select(model=setup["model"], user=setup["lead"], batch_size=15).cycle
    skipped = LabelQueueItem.objects.filter(cycle=cycle).order_by("priority_score").first()
    queue_services.queue_item_skip(item_id=skipped.pk, user=setup["scientist"], reason="no sample")
    _label(setup, cycle, 10)
    job = services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])

    select = AuditEvent.objects.get(action="select")
    assert (select.actor, select.cycle_id, select.data["strategy"], select.data["n"]) == (setup["lead"], cycle.pk, cycle.selection_strategy, 15)
    skip = AuditEvent.objects.get(action="skip")
    assert (skip.actor, skip.item_id, skip.data) == (setup["scientist"], skipped.pk, {"reason": "no sample"})
    retrain = AuditEvent.objects.get(action="retrain")
    assert (retrain.actor, retrain.cycle_id, retrain.data) == (setup["lead"], cycle.pk, {"new_labels": 10, "job": str(job.pk)})
    assert retrain.created_at >= skip.created_at >= select.created_at


def test_retrain_below_the_threshold_and_a_double_trigger_are_refused(setup, rq_queue):  # type: ignore[no-untyped-def]
    cycle = services.cycle_select(model=setup["model"], user=setup["lead"], batch_size=15).cycle
    _label(setup, cycle, 5)
    with pytest.raises(ValidationFailed, match="5 new or corrected labels"):
        services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])
    _label(setup, cycle, 10)
    services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])
    with pytest.raises(Conflict, match="already training"):
        services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])
    assert len(rq_queue) == 1
    assert Job.objects.count() == 1


def test_a_correction_of_a_trained_label_counts_toward_the_next_retrain(setup):  # type: ignore[no-untyped-def]
    from cycles.services.retraining import new_label_count

    model = setup["model"]
    cycle = services.cycle_select(model=model, user=setup["lead"], batch_size=12).cycle
    labeled = _label(setup, cycle, 10)
    services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"], inline=True)
    new = MLModel.objects.get(name=model.name, status="active")
    assert new.version == 2 and new_label_count(model=new) == 0
    item = labeled[0]
    queue_services.label_correct(item_id=item.pk, user=setup["lead"], value=setup["truth"][item.compound_id] + 0.5,
                                 notes="re-measured")
    queue_services.label_correct(item_id=item.pk, user=setup["lead"], value=setup["truth"][item.compound_id] + 0.4,
                                 notes="re-measured again")
    assert new_label_count(model=new) == 1  # one label changed, however often


def test_a_label_saved_while_the_job_trains_moves_to_the_new_version_unlearned(setup, monkeypatch):  # type: ignore[no-untyped-def]
    from cycles.services import retraining
    from cycles.services.retraining import new_label_count

    model = setup["model"]
    cycle = services.cycle_select(model=model, user=setup["lead"], batch_size=14).cycle
    learned = _label(setup, cycle, 10)
    late: list = []
    real_train = model_services.model_train

    def train_then_a_scientist_labels(**kwargs):  # type: ignore[no-untyped-def]
        # The job has read the measurements and fit; a scientist saves a label now.
        result = real_train(**kwargs)
        late.extend(_label(setup, cycle, 1))
        return result

    monkeypatch.setattr(retraining.model_services, "model_train", train_then_a_scientist_labels)
    services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"], inline=True)
    new = MLModel.objects.get(name=model.name, status="active")
    assert new.training_size == model.training_size + 10  # the late label was not trained on
    late_item = LabelQueueItem.objects.get(pk=late[0].pk)
    assert (late_item.status, late_item.model_id) == ("labeled", new.pk)
    assert all(LabelQueueItem.objects.get(pk=i.pk).status == "archived" for i in learned)
    assert new_label_count(model=new) == 1


def test_scientists_cannot_trigger_retraining(setup):  # type: ignore[no-untyped-def]
    cycle = services.cycle_select(model=setup["model"], user=setup["lead"], batch_size=5).cycle
    with pytest.raises(PermissionDenied):
        services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["scientist"], min_new_labels=0)


def test_a_job_that_raises_fails_the_cycle_keeps_the_old_model_and_retry_succeeds(setup, run_worker, settings):  # type: ignore[no-untyped-def]
    model = setup["model"]
    cycle = services.cycle_select(model=model, user=setup["lead"], batch_size=12).cycle
    _label(setup, cycle, 10)
    # Break training for real: the new version's hyper-parameters are invalid for XGBoost.
    MLModel.objects.filter(pk=model.pk).update(hyperparameters={"max_depth": -3})
    services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])
    run_worker()

    cycle.refresh_from_db()
    model.refresh_from_db()
    assert cycle.status == "failed"
    assert cycle.error
    assert model.status == "active"
    assert LabelQueueItem.objects.filter(cycle=cycle, status="labeled").count() == 10
    assert MLModel.objects.filter(name=model.name, status="failed").count() == 1

    MLModel.objects.filter(pk=model.pk).update(hyperparameters={"n_estimators": 40, "max_depth": 4})
    services.cycle_retry(cycle_id=cycle.pk, user=setup["lead"])
    run_worker()
    cycle.refresh_from_db()
    assert cycle.status == "complete"
    assert cycle.result_model.status == "active"


def test_redis_down_gives_a_clear_error_and_leaves_the_cycle_as_it_was(setup, settings):  # type: ignore[no-untyped-def]
    import django_rq

    cycle = services.cycle_select(model=setup["model"], user=setup["lead"], batch_size=12).cycle
    _label(setup, cycle, 10)
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:6390/0", "DEFAULT_TIMEOUT": 60}}
    django_rq.queues.get_redis_connection.cache_clear() if hasattr(django_rq.queues.get_redis_connection, "cache_clear") else None
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])
    cycle.refresh_from_db()
    assert cycle.status == "labeling"
    assert Job.objects.get().status == "failed"


@pytest.mark.slow
def test_a_killed_worker_is_reconciled_into_a_failed_cycle_and_retry_succeeds(setup, run_worker, settings):  # type: ignore[no-untyped-def]
    model = setup["model"]
    # A bigger ensemble so the worker is still training when it is killed.
    MLModel.objects.filter(pk=model.pk).update(n_members=30, hyperparameters={"n_estimators": 400, "max_depth": 8})
    cycle = services.cycle_select(model=model, user=setup["lead"], batch_size=12).cycle
    _label(setup, cycle, 10)
    job = services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--burst", "--worker-class", "rq.worker.SimpleWorker"],
        cwd=root, env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        job.refresh_from_db()
        if job.status == "running" and job.stage.startswith(("training", "computing", "loading")):
            break
        time.sleep(0.2)
    assert job.status == "running"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    failed = services.jobs_reconcile(stale_after=0)
    assert [j.pk for j in failed] == [job.pk]
    cycle.refresh_from_db()
    model.refresh_from_db()
    assert cycle.status == "failed"
    assert model.status == "active"
    assert LabelQueueItem.objects.filter(cycle=cycle, status="labeled").count() == 10

    MLModel.objects.filter(pk=model.pk).update(n_members=3, hyperparameters={"n_estimators": 40, "max_depth": 4})
    services.cycle_retry(cycle_id=cycle.pk, user=setup["lead"])
    run_worker()
    cycle.refresh_from_db()
    assert cycle.status == "complete"


def test_a_selection_that_picks_nothing_opens_no_cycle(setup):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed, match="picked no compound") as err:
        services.cycle_select(model=setup["model"], user=setup["lead"], strategy="uncertainty", batch_size=5,
                              params={"min_uncertainty": 99.0})
    assert err.value.extra["field"] == "params"
    assert not ActiveLearningCycle.objects.exists()
    preview = services.cycle_select(model=setup["model"], user=setup["lead"], strategy="uncertainty", batch_size=5,
                                    params={"min_uncertainty": 99.0}, preview=True)
    assert preview.candidates == []  # a preview may show the empty result


def test_a_sibling_cycle_retrains_on_the_version_that_replaced_its_own(setup):  # type: ignore[no-untyped-def]
    model = setup["model"]
    first = services.cycle_select(model=model, user=setup["lead"], batch_size=10).cycle
    second = services.cycle_select(model=model, user=setup["lead"], batch_size=10).cycle
    _label(setup, first, 10)
    services.cycle_retrain_trigger(cycle_id=first.pk, user=setup["lead"], inline=True)
    v2 = MLModel.objects.get(name=model.name, status="active")
    # The second cycle's open items moved to v2 with that retrain, and the cycle with them.
    assert LabelQueueItem.objects.filter(cycle=second, model=v2, status="pending").count() == 10
    second.refresh_from_db()
    assert second.model_id == v2.pk
    _label(setup, second, 10)
    job = services.cycle_retrain_trigger(cycle_id=second.pk, user=setup["lead"], inline=True)
    assert job.status == "succeeded", job.error
    second.refresh_from_db()
    v3 = MLModel.objects.get(name=model.name, status="active")
    assert (v3.version, v3.parent_id, second.status, second.result_model_id) == (3, v2.pk, "complete", v3.pk)
    assert second.metrics_before == metrics_headline(v2.metrics)
    assert v3.training_size == v2.training_size + 10
    stats = services.cycle_stats(model=v3)
    # Queue counts cover the lineage: the 20 labels archived with v1 and v2 are still counted.
    assert stats["queue"]["archived"] == 20
    rows = {c["cycle_number"]: c for c in stats["cycles"]}
    assert (rows[first.cycle_number]["labels_added"], rows[second.cycle_number]["labels_added"]) == (10, 10)
    assert rows[second.cycle_number]["result_version"] == 3


def test_a_sibling_cycle_whose_labels_a_retrain_learned_is_complete(setup):  # type: ignore[no-untyped-def]
    model = setup["model"]
    first = services.cycle_select(model=model, user=setup["lead"], batch_size=10).cycle
    done = services.cycle_select(model=model, user=setup["lead"], batch_size=6).cycle
    going = services.cycle_select(model=model, user=setup["lead"], batch_size=6).cycle
    _label(setup, first, 10)
    # `done`: everything labeled or skipped before the first cycle's retrain; `going`: one item still open.
    _label(setup, done, 5)
    queue_services.queue_item_skip(item_id=LabelQueueItem.objects.get(cycle=done, status="pending").pk,
                                   user=setup["scientist"], reason="no sample")
    _label(setup, going, 5)
    job = services.cycle_retrain_trigger(cycle_id=first.pk, user=setup["lead"], inline=True)
    assert job.status == "succeeded", job.error
    v1, v2 = model, MLModel.objects.get(name=model.name, status="active")
    done.refresh_from_db()
    going.refresh_from_db()
    assert (done.status, done.result_model_id, done.job_id, done.model_id) == ("complete", v2.pk, job.pk, v1.pk)
    assert done.metrics_before == metrics_headline(v1.metrics) and done.metrics_after == metrics_headline(v2.metrics)
    assert done.completed_at is not None
    assert (going.status, going.model_id) == ("labeling", v2.pk)
    assert LabelQueueItem.objects.filter(cycle=done, status="archived").count() == 5
    assert LabelQueueItem.objects.filter(cycle=going, status="pending", model=v2).count() == 1
    # One retrain, reported once: `done` names the cycle whose retrain learned its labels,
    # and convergence does not count the shared retrain twice.
    stats = services.cycle_stats(model=v2, k=2, delta=10.0)
    rows = {c["cycle_number"]: c for c in stats["cycles"]}
    assert rows[done.cycle_number]["labels_added"] is None
    assert rows[done.cycle_number]["retrained_with_cycle"] == first.cycle_number
    assert rows[first.cycle_number]["labels_added"] == 20  # its 10, done's 5 and going's 5
    assert stats["converged"] is False


def test_a_job_declared_dead_that_wakes_up_cannot_finish_the_cycle(setup, run_worker):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from cycles.services import retraining

    model = setup["model"]
    cycle = services.cycle_select(model=model, user=setup["lead"], batch_size=12).cycle
    _label(setup, cycle, 10)
    dead = services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])
    # A worker claimed it, then froze (SIGSTOP): running, heartbeat long gone.
    Job.objects.filter(pk=dead.pk).update(status="running", heartbeat_at=timezone.now() - timedelta(hours=1))
    assert [j.pk for j in services.jobs_reconcile(stale_after=60)] == [dead.pk]
    retry = services.cycle_retry(cycle_id=cycle.pk, user=setup["lead"])
    # The frozen worker wakes up and trains to the end.
    retraining._run_claimed(job_id=dead.pk)
    cycle.refresh_from_db()
    dead.refresh_from_db()
    assert (cycle.status, cycle.job_id) == ("training", retry.pk)
    assert dead.status == "failed" and "declared dead" in dead.error
    assert MLModel.objects.get(name=model.name, status="active").pk == model.pk
    assert MLModel.objects.filter(name=model.name, status="failed").count() == 1
    run_worker()
    cycle.refresh_from_db()
    retry.refresh_from_db()
    assert (cycle.status, retry.status, cycle.job_id) == ("complete", "succeeded", retry.pk)
    v_new = MLModel.objects.get(name=model.name, status="active")
    assert cycle.result_model_id == v_new.pk
    # The discarded version is not a point of the learning curve.
    curve = services.cycle_stats(model=v_new)["learning_curve"]
    assert [p["status"] for p in curve] == ["superseded", "active"]


def test_labels_saved_while_training_go_on_with_the_carried_items_and_corrections_wait(setup):  # type: ignore[no-untyped-def]
    from cycles.services import retraining

    model = setup["model"]
    cycle = services.cycle_select(model=model, user=setup["lead"], batch_size=14).cycle
    _label(setup, cycle, 10)
    late = LabelQueueItem.objects.filter(cycle=cycle, status="pending").order_by("-priority_score").first()
    typo = LabelQueueItem.objects.filter(cycle=cycle, status="labeled").first()
    job = services.cycle_retrain_trigger(cycle_id=cycle.pk, user=setup["lead"])
    # The job body, step by step: the worker claims it and starts training …
    Job.objects.filter(pk=job.pk).update(status="running")
    new = model_services.model_version_create(parent=model, user=setup["lead"])
    model_services.model_train(model=new)
    # … meanwhile one more label arrives, and its labeler tries to fix another one.
    queue_services.label_submit(item_id=late.pk, user=setup["scientist"], value=setup["truth"][late.compound_id])
    with pytest.raises(Conflict, match="being retrained right now"):
        queue_services.label_correct(item_id=typo.pk, user=setup["scientist"], value=-1.0, notes="typo")
    cycle.refresh_from_db()
    retraining._finish(cycle=cycle, parent=model, new=MLModel.objects.get(pk=new.pk), job=Job.objects.get(pk=job.pk))
    cycle.refresh_from_db()
    successor = ActiveLearningCycle.objects.get(cycle_number=2)
    late.refresh_from_db()
    # The late label was not learned: it belongs to the cycle that will learn it.
    assert (late.status, late.model_id, late.cycle_id) == ("labeled", new.pk, successor.pk)
    assert (cycle.items_labeled, successor.items_labeled, successor.items_selected) == (10, 1, 4)
    assert services.cycle_stats(model=new)["cycles"][1]["items_labeled"] == 1
