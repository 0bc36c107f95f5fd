import numpy as np
import pytest

from compounds.models import Measurement
from config.exceptions import Conflict, ValidationFailed
from mlmodels import services
from mlmodels.ml.artifacts import load_artifact
from mlmodels.models import MLModel
from tests.solubility import FAST, solubility_setup

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.ARTIFACT_ROOT = tmp_path
    return solubility_setup()


def test_version_one_is_trained_active_and_measured_on_its_validation_set(setup):  # type: ignore[no-untyped-def]
    model = setup["model"]
    assert model.status == "active"
    assert model.version == 1
    assert model.metrics["n"] == len(setup["validation_ids"])
    assert model.metrics["rmse"] > 0
    assert set(model.validation_set.compounds.values_list("id", flat=True)) == set(setup["validation_ids"])


def test_the_validation_compounds_are_never_trained_on(setup, settings):  # type: ignore[no-untyped-def]
    model = setup["model"]
    art = load_artifact(settings.ARTIFACT_ROOT / model.artifact)
    assert set(art.training_ids).isdisjoint(setup["validation_ids"])
    assert model.training_size == len(art.training_ids) == 60


def test_the_kernel_ridge_half_is_a_per_model_hyperparameter(setup, settings):  # type: ignore[no-untyped-def]
    default = load_artifact(settings.ARTIFACT_ROOT / setup["model"].artifact).ensemble
    assert default.basis_ is not None and default.smooth_weight == 0.5
    trees_only = services.model_create_initial(
        assay=setup["assay"], name="trees only", validation_compound_ids=setup["validation_ids"], n_members=3,
        hyperparameters={**FAST, "smooth_weight": 0.0},
    )
    estimator = load_artifact(settings.ARTIFACT_ROOT / trees_only.artifact).ensemble
    assert estimator.smooth_weight == 0.0 and estimator.basis_ is None
    assert trees_only.metrics["rmse"] != setup["model"].metrics["rmse"]


def test_pool_scores_do_not_depend_on_the_chunking(setup, monkeypatch):  # type: ignore[no-untyped-def]
    from compounds.models import Compound

    pool = Compound.objects.filter(id__in=setup["pool_ids"])
    whole = services.model_score_compounds(model=setup["model"], queryset=pool, chunk_size=50_000)
    # Chunks of 7 read by IN lists of 3 ids: every compound once, in id order, same scores.
    monkeypatch.setattr(services, "_IN_BATCH", 3)
    chunked = services.model_score_compounds(model=setup["model"], queryset=pool, chunk_size=7)
    assert whole.ids.tolist() == chunked.ids.tolist() == sorted(setup["pool_ids"])
    assert whole.mean.tolist() == chunked.mean.tolist()
    assert whole.applicability.tolist() == chunked.applicability.tolist()


def test_the_binary_copy_read_matches_the_orm_read_and_fills_stale_rows(setup):  # type: ignore[no-untyped-def]
    import numpy as np

    from compounds.models import Compound

    spec = services.model_feature_spec(setup["model"])
    assert spec.n_stored > 0
    pool = Compound.objects.filter(id__in=setup["pool_ids"])
    ids = sorted(setup["pool_ids"])
    list(services.pool_chunks(pool_ids=services.pool_id_array(pool), spec=spec))  # stores the pool's features
    Compound.objects.filter(id__in=ids[::5]).update(feature_vector=None, feature_set="")
    Compound.objects.filter(id__in=ids[1::5]).update(feature_set="another featurizer")
    partial = services._chunk_rows_copy(np.array(ids), spec)
    assert partial is not None
    stale = set(ids[::5]) | set(ids[1::5])
    assert partial[0].tolist() == [i for i in ids if i not in stale]

    chunks = list(services.pool_chunks(pool_ids=services.pool_id_array(pool), spec=spec, chunk_size=9))
    got_ids = np.concatenate([c[0] for c in chunks])
    assert got_ids.tolist() == ids  # every compound once, in id order, stale ones included
    assert not Compound.objects.filter(id__in=ids).exclude(feature_set=spec.name).exists()
    orm = services._chunk_rows_orm(ids, spec)
    assert orm is not None
    orm_ids, orm_packed, orm_stored, _ = orm
    assert orm_ids.tolist() == ids
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), orm_packed)
    np.testing.assert_array_equal(np.concatenate([c[2] for c in chunks]), orm_stored)
    whole = services._chunk_rows_copy(np.array(ids), spec)
    assert whole is not None and whole[0].tolist() == ids
    np.testing.assert_array_equal(whole[2], orm_stored)


def test_a_new_version_keeps_the_frozen_validation_set(setup):  # type: ignore[no-untyped-def]
    model = setup["model"]
    before = set(model.validation_set.compounds.values_list("id", flat=True))
    # More labels arrive, including for pool compounds.
    for cid, value in list(setup["truth"].items())[:10]:
        Measurement.objects.create(compound_id=cid, assay=setup["assay"], value=value)
    new = services.model_version_create(parent=model)
    services.model_train(model=new)
    services.model_activate(model=new)
    model.refresh_from_db()
    assert new.validation_set_id == model.validation_set_id
    assert set(new.validation_set.compounds.values_list("id", flat=True)) == before
    assert new.training_size == 70
    assert (model.status, new.status, new.parent_id) == ("superseded", "active", model.pk)
    assert new.metrics["n"] == model.metrics["n"]


def test_the_validation_values_are_frozen_with_version_one(setup):  # type: ignore[no-untyped-def]
    model = setup["model"]
    frozen = dict(model.validation_set.values)
    assert len(frozen) == len(setup["validation_ids"]) == model.metrics["n"]
    # Someone measures a validation compound again, far from its value; the next version
    # is still scored against the values version 1 was scored against.
    cid = setup["validation_ids"][0]
    Measurement.objects.create(compound_id=cid, assay=setup["assay"], value=frozen[str(cid)] + 8.0)
    new = services.model_version_create(parent=model)
    services.model_train(model=new)
    new.validation_set.refresh_from_db()
    assert new.validation_set.values == frozen
    position = sorted(setup["validation_ids"]).index(cid)
    assert new.metrics["y_true"][position] == round(frozen[str(cid)], 4)
    assert new.metrics["y_true"] == model.metrics["y_true"]


def test_predictions_for_smiles_carry_uncertainty_and_applicability(setup):  # type: ignore[no-untyped-def]
    rows = services.model_predict(model=setup["model"], smiles=["CCO", "not smiles", "c1ccc2ccccc2c1"])
    assert rows[1].error.startswith("unparseable SMILES: syntax error")  # RDKit's own reason follows
    for row in (rows[0], rows[2]):
        assert row.prediction is not None
        assert row.uncertainty >= 0
        assert 0 <= row.applicability_distance <= 1


def test_intervals_come_from_the_spread_calibrated_on_out_of_bag_errors(setup, settings):  # type: ignore[no-untyped-def]
    import math

    model = setup["model"]
    art = load_artifact(settings.ARTIFACT_ROOT / model.artifact)
    stored = model.metrics["uncertainty_calibration"]
    assert stored["scale"] == pytest.approx(art.ensemble.calibration_.scale, abs=1e-6)
    assert stored["noise"] == pytest.approx(art.ensemble.calibration_.noise, abs=1e-6) and stored["noise"] > 0
    # Coverage, the parity plot's bars and the coverage curve use the predictive std; the
    # uncertainty Spearman and mean_spread describe the raw spread.
    y, mean, std = (np.asarray(model.metrics[k]) for k in ("y_true", "y_pred", "y_std"))
    assert model.metrics["coverage_95"] == pytest.approx(np.mean(np.abs(y - mean) <= 1.96 * std), abs=0.02)
    assert model.metrics["mean_std"] > model.metrics["mean_spread"]
    row = services.model_predict(model=model, smiles=["CCO"])[0]
    assert row.predictive_std == pytest.approx(math.sqrt(stored["scale"] * row.uncertainty**2 + stored["noise"]))
    by_id = services.model_predict(model=model, compound_ids=[setup["pool_ids"][0]])[0]
    assert by_id.predictive_std == pytest.approx(math.sqrt(stored["scale"] * by_id.uncertainty**2 + stored["noise"]))


def test_a_training_compound_has_applicability_distance_zero(setup, settings):  # type: ignore[no-untyped-def]
    art = load_artifact(settings.ARTIFACT_ROOT / setup["model"].artifact)
    row = services.model_predict(model=setup["model"], compound_ids=[art.training_ids[0]])[0]
    assert row.applicability_distance == pytest.approx(0.0, abs=1e-6)


def test_a_corrupt_artifact_marks_the_model_failed_and_predictions_refuse(setup, settings):  # type: ignore[no-untyped-def]
    model = setup["model"]
    (settings.ARTIFACT_ROOT / model.artifact).write_bytes(b"garbage")
    services._artifact_cache.clear()
    with pytest.raises(Conflict, match="cannot be used"):
        services.model_predict(model=model, smiles=["CCO"])
    model.refresh_from_db()
    assert model.status == "failed"
    assert "cannot be used" in model.error
    with pytest.raises(Conflict):
        services.model_predict(model=model, smiles=["CCO"])


def test_a_missing_artifact_file_refuses_but_leaves_the_model_active(setup, settings, tmp_path):  # type: ignore[no-untyped-def]
    """A process that does not see the worker's storage (ARTIFACT_ROOT unset or unmounted)
    used to mark the active version failed on the first page that predicted: for good."""
    model = setup["model"]
    real_root = settings.ARTIFACT_ROOT
    settings.ARTIFACT_ROOT = tmp_path / "not-mounted"
    services._artifact_cache.clear()
    with pytest.raises(Conflict, match=r"not found .* ARTIFACT_ROOT"):
        services.model_predict(model=model, smiles=["CCO"])
    model.refresh_from_db()
    assert model.status == "active" and model.error == ""
    settings.ARTIFACT_ROOT = real_root  # the volume is back: the model predicts again
    assert services.model_predict(model=model, smiles=["CCO"])[0].prediction is not None


def test_a_second_lineage_with_the_same_name_is_refused(setup):  # type: ignore[no-untyped-def]
    with pytest.raises(Conflict, match="exists already"):
        services.model_create_initial(assay=setup["assay"], name="Solubility test", hyperparameters=FAST)


def test_too_few_labels_are_refused_and_the_model_is_marked_failed():  # type: ignore[no-untyped-def]
    from tests.factories import AssayFactory, CompoundFactory

    assay = AssayFactory()
    compounds = [CompoundFactory() for _ in range(6)]
    for i, c in enumerate(compounds):
        Measurement.objects.create(compound=c, assay=assay, value=float(i))
    with pytest.raises(ValidationFailed, match="at least"):
        services.model_create_initial(
            assay=assay, name="tiny", validation_compound_ids=[compounds[0].pk], hyperparameters=FAST
        )
    assert MLModel.objects.get(name="tiny").status == "failed"


def test_a_random_validation_split_is_seeded_and_stratified_for_classes():  # type: ignore[no-untyped-def]
    from tests.factories import AssayFactory, CompoundFactory

    assay = AssayFactory(task_type="classification", classes=["a", "b"])
    for i in range(40):
        Measurement.objects.create(compound=CompoundFactory(), assay=assay, value=float(i % 2))
    a = services.validation_set_create(assay=assay, name="a", fraction=0.25, seed=3)
    b = services.validation_set_create(assay=assay, name="b", fraction=0.25, seed=3)
    ids = set(a.compounds.values_list("id", flat=True))
    assert ids == set(b.compounds.values_list("id", flat=True))
    values = Measurement.objects.filter(assay=assay, compound_id__in=ids).values_list("value", flat=True)
    assert sorted(values).count(0.0) == sorted(values).count(1.0) == 5


def test_predict_model_scores_a_file_offline_with_the_exported_artifact(setup, settings, tmp_path):  # type: ignore[no-untyped-def]
    import csv

    from django.core.management import call_command

    src = tmp_path / "in.csv"
    src.write_text("name,smiles\nethanol,CCO\nbad,xyz\n=cmd|' /C calc'!A0,CCN\n")
    out = tmp_path / "out.csv"
    artifact = settings.ARTIFACT_ROOT / setup["model"].artifact
    call_command("predict_model", str(src), "--artifact", str(artifact), "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["name"] == "ethanol"
    assert float(rows[0]["uncertainty"]) >= 0
    assert 0 <= float(rows[0]["applicability_distance"]) <= 1
    assert rows[1]["error"].startswith("unparseable SMILES: syntax error")
    assert rows[2]["name"].startswith("'=cmd")  # a spreadsheet shows it, never runs it
    # The same through the registry name.
    call_command("predict_model", str(src), "--name", "Solubility test", "--version", "1", "--out", str(out))
    assert len(list(csv.DictReader(out.open()))) == 3
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no trained model 'Solubility test' version 99"):
        call_command("predict_model", str(src), "--name", "Solubility test", "--version", "99")
    with pytest.raises(CommandError, match="no trained model 'Nope' version \\(active\\)"):
        call_command("predict_model", str(src), "--name", "Nope")
    with pytest.raises(CommandError, match="cannot write"):
        call_command("predict_model", str(src), "--artifact", str(artifact), "--out", str(tmp_path))


COUNTS_SPEC = {"name": "counts test", "morgan": "counts", "n_bits": 256, "atom_pairs": 128, "descriptors": "props"}


@pytest.mark.parametrize(("which", "columns"), [(None, 256 + 128), ("morgan+atom_pairs", 256 + 128), ("morgan", 256)])
def test_the_minmax_part_compares_the_count_blocks_asked_for(setup, settings, which, columns):  # type: ignore[no-untyped-def]
    hyper = {**FAST, "smooth_weight": 0.3, "count_weight": 0.3}
    if which is not None:
        hyper["count_fingerprints"] = which
    model = services.model_create_initial(
        assay=setup["assay"], name=f"counts {which}", validation_compound_ids=setup["validation_ids"],
        n_members=2, featurizer=COUNTS_SPEC, hyperparameters=hyper,
    )
    ensemble = load_artifact(settings.ARTIFACT_ROOT / model.artifact).ensemble
    assert ensemble.count_basis_.n_columns_ == columns
    assert model.hyperparameters.get("count_fingerprints") == which


def test_an_unknown_count_block_is_refused_before_anything_is_written(setup):  # type: ignore[no-untyped-def]
    before = MLModel.objects.count()
    with pytest.raises(ValidationFailed, match="count_fingerprints") as info:
        services.model_create_initial(
            assay=setup["assay"], name="bad counts", validation_compound_ids=setup["validation_ids"],
            featurizer=COUNTS_SPEC, hyperparameters={"count_weight": 0.3, "count_fingerprints": "torsions"},
        )
    assert info.value.extra == {"field": "hyperparameters.count_fingerprints"}
    assert MLModel.objects.count() == before


def test_a_classification_version_keeps_what_its_calibration_curve_needs(setup, client_for, viewer):  # type: ignore[no-untyped-def]
    from django.urls import reverse

    from tests.factories import AssayFactory

    classes = AssayFactory(name="soluble?", task_type="classification", classes=["low", "high"])
    for m in Measurement.objects.filter(assay=setup["assay"]):
        Measurement.objects.create(compound_id=m.compound_id, assay=classes, value=float(m.value > -3.0))
    model = services.model_create_initial(
        assay=classes, name="Soluble", validation_compound_ids=setup["validation_ids"], n_members=3, hyperparameters=FAST
    )
    metrics = model.metrics
    assert len(metrics["y_true"]) == len(metrics["proba"]) == metrics["n"]
    assert all(abs(sum(row) - 1.0) < 1e-3 for row in metrics["proba"])
    body = client_for(viewer).get(reverse("mlmodels:detail", args=[model.pk])).content.decode()
    assert 'aria-label="Calibration curve"' in body or "Calibration curve" in body
    assert "do not store" not in body


@pytest.mark.django_db(transaction=True)
def test_the_prefetching_pipeline_scores_as_the_plain_loop_does(settings, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    # Outside a transaction on PostgreSQL, a pool of more than one chunk is read, built
    # and given its applicability on a second thread while the previous chunk is
    # predicted; inside one (as in the tests above) the loop is plain.
    from django.db import connection, transaction

    from compounds.models import Compound

    if connection.vendor != "postgresql":
        pytest.skip("the prefetch thread is used on PostgreSQL only")
    settings.ARTIFACT_ROOT = tmp_path
    setup = solubility_setup()
    pool = Compound.objects.filter(id__in=setup["pool_ids"])
    with transaction.atomic():
        plain = services.model_score_compounds(model=setup["model"], queryset=pool, chunk_size=6)
    threads = []
    original = services._prefetched
    monkeypatch.setattr(services, "_prefetched", lambda it: threads.append(1) or original(it))
    prefetched = services.model_score_compounds(model=setup["model"], queryset=pool, chunk_size=6)
    assert threads == [1]
    assert prefetched.ids.tolist() == plain.ids.tolist() == sorted(setup["pool_ids"])
    assert prefetched.mean.tolist() == plain.mean.tolist()
    assert prefetched.std.tolist() == plain.std.tolist()
    assert prefetched.applicability.tolist() == plain.applicability.tolist()
    assert prefetched.fingerprints.tobytes() == plain.fingerprints.tobytes()


def test_the_melting_point_prior_is_on_by_default_and_recorded(setup, settings):  # type: ignore[no-untyped-def]
    model = setup["model"]  # DEFAULT_SPEC: the "fast" descriptors the prior reads
    assert model.hyperparameters["melting_point_prior"] is True
    ensemble = load_artifact(settings.ARTIFACT_ROOT / model.artifact).ensemble
    assert ensemble.prior_ is not None and ensemble.descriptor_offset == 512
    # How a regression ensemble uses it is recorded too, and a new version keeps it.
    assert model.hyperparameters["smooth_prior_weight"] == 4.0
    assert model.hyperparameters["prior_baseline"] == 0.5
    assert model.hyperparameters["smooth_all_rows"] == 1.0  # the kernel half's all-rows share
    assert ensemble.baseline_ is not None
    tuned = services.model_create_initial(
        assay=setup["assay"], name="tuned prior", validation_compound_ids=setup["validation_ids"], n_members=3,
        hyperparameters={**FAST, "prior_baseline": 0.0, "smooth_prior_weight": 2.0, "smooth_all_rows": 0.0},
    )
    tuned_ensemble = load_artifact(settings.ARTIFACT_ROOT / tuned.artifact).ensemble
    assert tuned_ensemble.baseline_ is None and tuned_ensemble.smooth_prior_weight == 2.0
    assert tuned_ensemble.smooth_all_rows == 0.0
    child = services.model_version_create(parent=tuned).hyperparameters
    assert (child["prior_baseline"], child["smooth_prior_weight"], child["smooth_all_rows"]) == (0.0, 2.0, 0.0)
    off = services.model_create_initial(
        assay=setup["assay"], name="no prior", validation_compound_ids=setup["validation_ids"], n_members=3,
        hyperparameters={**FAST, "melting_point_prior": False},
    )
    assert load_artifact(settings.ARTIFACT_ROOT / off.artifact).ensemble.prior_ is None
    assert off.hyperparameters["melting_point_prior"] is False
    # A new version keeps what its lineage recorded.
    assert services.model_version_create(parent=off).hyperparameters["melting_point_prior"] is False


def test_hit_finding_and_featurizers_without_the_descriptors_train_without_the_prior(setup, settings):  # type: ignore[no-untyped-def]
    hits = services.model_create_initial(
        assay=setup["assay"], name="hits", validation_compound_ids=setup["validation_ids"], n_members=2,
        preset="hit_finding", hyperparameters=FAST,
    )
    assert hits.hyperparameters["melting_point_prior"] is False
    assert load_artifact(settings.ARTIFACT_ROOT / hits.artifact).ensemble.prior_ is None
    counts = services.model_create_initial(
        assay=setup["assay"], name="counts", validation_compound_ids=setup["validation_ids"], n_members=2,
        featurizer=COUNTS_SPEC, hyperparameters=FAST,
    )
    assert counts.hyperparameters["melting_point_prior"] is False


@pytest.mark.parametrize(
    ("value", "featurizer", "message"),
    [("yes", None, "must be true or false"), (1, None, "must be true or false"), (True, COUNTS_SPEC, "needs the 'fast'")],
)
def test_a_bad_melting_point_prior_is_refused_before_anything_is_written(setup, value, featurizer, message):  # type: ignore[no-untyped-def]
    before = MLModel.objects.count()
    with pytest.raises(ValidationFailed, match=message) as info:
        services.model_create_initial(
            assay=setup["assay"], name="bad prior", validation_compound_ids=setup["validation_ids"],
            featurizer=featurizer, hyperparameters={**FAST, "melting_point_prior": value},
        )
    assert info.value.extra == {"field": "hyperparameters.melting_point_prior"}
    assert MLModel.objects.count() == before
