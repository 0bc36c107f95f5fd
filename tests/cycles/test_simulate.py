import csv
import json

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

FAST = '{"n_estimators": 30, "max_depth": 3, "learning_rate": 0.3}'


def test_simulate_writes_a_learning_curve_with_random_as_baseline(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    out = tmp_path / "curve"
    call_command(
        "simulate", "--cycles", "2", "--batch-size", "15", "--initial", "30", "--seeds", "2", "--members", "2",
        "--hyperparameters", FAST, "--strategy", "random", "--strategy", "uncertainty", "--out", str(out),
    )
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    # 2 strategies x 2 seeds x (initial + 2 cycles)
    assert len(rows) == 12
    assert {r["labels"] for r in rows} == {"30", "45", "60"}
    assert all(float(r["value"]) > 0 for r in rows)
    summary = json.loads(out.with_suffix(".json").read_text())["summary"]
    assert set(summary["strategies"]) == {"random", "uncertainty"}
    assert out.with_suffix(".png").stat().st_size > 1000
    # The runs leave nothing behind but the imported truth data (reused by later runs).
    from compounds.models import Assay
    from cycles.models import ActiveLearningCycle, Job
    from labeling.models import AuditEvent, LabelQueueItem
    from mlmodels.models import MLModel, ValidationSet

    for table in (MLModel, ActiveLearningCycle, LabelQueueItem, AuditEvent, Job, ValidationSet):
        assert not table.objects.exists(), table.__name__
    assert list(Assay.objects.values_list("name", flat=True)) == ["sim-truth:solubility:logS"]
    assert not any(p.is_file() for p in (tmp_path / "artifacts").rglob("*"))


def test_hit_finding_mode_reports_the_share_of_the_true_top_found(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    src = settings.BASE_DIR / "compounds" / "fixtures" / "solubility.csv"
    data = tmp_path / "scores.csv"
    with src.open() as fh, data.open("w", newline="") as out_fh:
        reader = csv.DictReader(fh)
        w = csv.writer(out_fh)
        w.writerow(["smiles", "score"])
        for i, r in enumerate(reader):
            if i < 400:
                w.writerow([r["smiles"], -float(r["logS"])])
    out = tmp_path / "hits"
    call_command(
        "simulate", "--data", str(data), "--assay", "score", "--mode", "find", "--direction", "minimize",
        "--cycles", "2", "--initial", "0.05", "--batch-size", "0.05", "--seeds", "1", "--members", "2",
        "--hyperparameters", FAST, "--strategy", "greedy", "--strategy", "random", "--top-k", "20", "--out", str(out),
    )
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert {r["metric"] for r in rows} == {"top20_found_pct"}
    greedy = [r for r in rows if r["strategy"] == "greedy"]
    assert [int(r["labels"]) for r in greedy] == [20, 40, 60]
    values = [float(r["value"]) for r in greedy]
    assert values == sorted(values)  # acquired compounds only accumulate
    assert 0 <= values[-1] <= 100


def test_a_strategy_name_can_label_a_tuned_variant(tmp_path, settings):  # type: ignore[no-untyped-def]
    from cycles.models import ActiveLearningCycle

    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    out = tmp_path / "variant"
    params = '{"unc_ranked": {"strategy": "uncertainty", "batch": "ranked_batch", "alpha": 0.4}}'
    call_command(
        "simulate", "--cycles", "1", "--batch-size", "10", "--initial", "20", "--seeds", "1", "--members", "2",
        "--hyperparameters", FAST, "--strategy", "unc_ranked", "--params", params, "--out", str(out), "--keep",
    )
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert {r["strategy"] for r in rows} == {"unc_ranked"}
    cycle = ActiveLearningCycle.objects.get()
    assert cycle.selection_strategy == "uncertainty"
    assert cycle.strategy_params["batch"] == "ranked_batch"
    assert cycle.strategy_params["alpha"] == 0.4


def test_check_rows_score_every_version_and_are_never_picked_labeled_or_validated(tmp_path, settings):  # type: ignore[no-untyped-def]
    import numpy as np

    from compounds.models import Compound, Measurement
    from mlmodels import services as model_services
    from mlmodels.models import MLModel

    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    src = settings.BASE_DIR / "compounds" / "fixtures" / "solubility.csv"
    data = tmp_path / "sol.csv"
    with src.open() as fh, data.open("w", newline="") as out_fh:
        reader = csv.DictReader(fh)
        w = csv.DictWriter(out_fh, fieldnames=reader.fieldnames or [])
        w.writeheader()
        train = [r for r in reader if r["split"] == "train"][:240]
        for i, r in enumerate(train):
            w.writerow({**r, "split": "train" if i < 160 else "test" if i < 200 else "check"})
    out = tmp_path / "checked"
    # A design aimed at the validation compounds: the check rows are the yardstick it never sees.
    params = '{"aimed": {"strategy": "variance_reduction", "target": "validation"}}'
    call_command(
        "simulate", "--data", str(data), "--cycles", "2", "--batch-size", "20", "--initial", "30", "--seeds", "1",
        "--members", "2", "--hyperparameters", FAST, "--strategy", "aimed", "--params", params,
        "--out", str(out), "--keep",
    )
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert [int(r["labels"]) for r in rows] == [30, 50, 70]
    assert all(float(r["check_rmse"]) > 0 for r in rows)
    check_ids = set(Compound.objects.filter(datasets__name="sim:sol:check").values_list("id", flat=True))
    assert len(check_ids) == 40
    model = MLModel.objects.get(status="active")
    assert not check_ids & set(model.validation_set.compounds.values_list("id", flat=True))
    assert not check_ids & set(Measurement.objects.filter(assay=model.assay).values_list("compound_id", flat=True))
    # The last row's check RMSE is the final version's, computed by hand.
    truth = dict(Measurement.objects.filter(assay__name="sim-truth:sol:logS").values_list("compound_id", "value"))
    scores = model_services.model_score_compounds(model=model, compound_ids=sorted(check_ids))
    expected = np.sqrt(np.mean((scores.mean - np.array([truth[int(i)] for i in scores.ids])) ** 2))
    assert float(rows[-1]["check_rmse"]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "bogus"], "unknown strategy 'bogus'"),
        (["--initial", "0"], "--initial must be a count or a fraction above 0"),
        (["--batch-size", "0"], "--batch-size must be a count or a fraction above 0"),
        (["--cycles", "0"], "--cycles must be at least 1"),
        (["--assay", "no_such_column"], "has no column 'no_such_column'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, args, message):  # type: ignore[no-untyped-def]
    from django.core.management.base import CommandError

    from compounds.models import Assay, Compound

    with pytest.raises(CommandError, match=message):
        call_command("simulate", "--out", str(tmp_path / "x"), *args)
    assert not Assay.objects.exists() and not Compound.objects.exists()
