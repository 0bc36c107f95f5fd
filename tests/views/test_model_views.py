"""Model list/detail pages, downloads and the lazy explanation/prediction fragments."""

import json

import pytest
from django.urls import reverse

from tests.factories import CompoundFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(model):  # type: ignore[no-untyped-def]
    model.metrics = {"rmse": 0.5, "mae": 0.4, "r2": 0.9, "spearman": 0.95, "coverage_95": 0.9, "n": 3,
                     "y_true": [-1.0, -2.0, -3.0], "y_pred": [-1.2, -2.1, -2.7], "y_std": [0.2, 0.1, 0.3]}
    model.save()
    return model


def test_without_models_the_pages_say_how_a_first_version_is_trained(client_for, lead):  # type: ignore[no-untyped-def]
    # The API has no training endpoint (a first version is trained with the command; later
    # ones by retrain), so the empty state must not send anyone there.
    c = client_for(lead)
    for url in (reverse("mlmodels:list"), reverse("cycles:selection"), reverse("cycles:history")):
        body = c.get(url).content.decode()
        assert "python manage.py train_model --assay ASSAY --name NAME" in body and "or the API" not in body, url
    paths = c.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert "post" not in paths["/api/models/"] and not any(path.endswith("/train/") for path in paths)


def test_the_list_shows_each_lineage_with_its_metric(client_for, viewer, scored):  # type: ignore[no-untyped-def]
    body = client_for(viewer).get(reverse("mlmodels:list")).content.decode()
    assert "Solubility" in body and "RMSE <strong>0.5</strong>" in body
    assert reverse("mlmodels:detail", args=[scored.pk]) in body


def test_the_detail_page_draws_a_parity_plot_and_lists_versions(client_for, viewer, scored):  # type: ignore[no-untyped-def]
    body = client_for(viewer).get(reverse("mlmodels:detail", args=[scored.pk])).content.decode()
    assert "Predicted against measured on the validation set" in body and "<circle" in body
    assert "95% interval coverage" in body and "Spearman" in body
    assert reverse("mlmodels:metrics_json", args=[scored.pk]) in body
    assert "Versions of Solubility" in body


def test_the_detail_page_says_which_std_its_intervals_use(client_for, viewer, scored):  # type: ignore[no-untyped-def]
    body = client_for(viewer).get(reverse("mlmodels:detail", args=[scored.pk])).content.decode()
    assert "bars: ± 1.96 × ensemble std" in body and "trained before calibrated intervals" in body
    scored.metrics |= {"uncertainty_calibration": {"scale": 2.5, "noise": 0.17, "rows": 950}, "mean_spread": 0.1}
    scored.save()
    body = client_for(viewer).get(reverse("mlmodels:detail", args=[scored.pk])).content.decode()
    assert "bars: ± 1.96 × predictive std" in body
    assert "√(2.5 × spread² + 0.17)" in body and "out-of-bag errors of 950 training compounds" in body
    assert "Mean ensemble spread" in body


def test_a_classification_model_shows_its_confusion_matrix_and_ece(client_for, viewer, class_model):  # type: ignore[no-untyped-def]
    class_model.metrics = {"roc_auc": 0.8, "ece": 0.07, "accuracy": 0.7, "confusion_matrix": [[5, 1, 0], [1, 4, 2], [0, 1, 6]]}
    class_model.save()
    body = client_for(viewer).get(reverse("mlmodels:detail", args=[class_model.pk])).content.decode()
    assert "Confusion matrix on the validation set" in body
    assert "ECE 0.07" in body and "per-compound probabilities" in body
    assert "ROC-AUC" in body


def test_metrics_download_as_json(client_for, viewer, scored):  # type: ignore[no-untyped-def]
    response = client_for(viewer).get(reverse("mlmodels:metrics_json", args=[scored.pk]))
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content)["metrics"]["rmse"] == 0.5


def test_artifact_download(client_for, viewer, model, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.ARTIFACT_ROOT = tmp_path
    c = client_for(viewer)
    assert c.get(reverse("mlmodels:artifact", args=[model.pk])).status_code == 404
    (tmp_path / "sol").mkdir()
    (tmp_path / "sol" / "v1.joblib").write_bytes(b"artifact-bytes")
    model.artifact = "sol/v1.joblib"
    model.save()
    response = c.get(reverse("mlmodels:artifact", args=[model.pk]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"artifact-bytes"
    model.artifact = "../../etc/passwd"
    model.save()
    assert c.get(reverse("mlmodels:artifact", args=[model.pk])).status_code == 404


@pytest.mark.parametrize("name", ["mlmodels:detail", "mlmodels:metrics_json", "mlmodels:artifact"])
def test_unknown_models_are_404(client_for, viewer, name):  # type: ignore[no-untyped-def]
    assert client_for(viewer).get(reverse(name, args=[999999])).status_code == 404


def test_an_explanation_that_cannot_be_made_is_a_message(client_for, viewer, model):  # type: ignore[no-untyped-def]
    compound = CompoundFactory()
    response = client_for(viewer).get(reverse("mlmodels:explain", args=[model.pk, compound.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Explanation unavailable" in response.content.decode()
    assert client_for(viewer).get(reverse("mlmodels:explain", args=[model.pk, 999999])).status_code == 404


def test_the_compound_page_loads_predictions_lazily(client_for, viewer, model):  # type: ignore[no-untyped-def]
    compound = CompoundFactory()
    c = client_for(viewer)
    page = c.get(reverse("compounds:detail", args=[compound.pk])).content.decode()
    url = reverse("mlmodels:compound_predictions", args=[compound.pk])
    assert url in page and 'hx-trigger="load"' in page
    fragment = c.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Solubility" in fragment and "Prediction unavailable" in fragment


def test_compound_predictions_without_models(client_for, viewer):  # type: ignore[no-untyped-def]
    compound = CompoundFactory()
    fragment = client_for(viewer).get(reverse("mlmodels:compound_predictions", args=[compound.pk])).content.decode()
    assert "No active model yet." in fragment


def test_the_detail_page_says_what_the_version_was_trained_with(client_for, viewer, model):  # type: ignore[no-untyped-def]
    body = client_for(viewer).get(reverse("mlmodels:detail", args=[model.pk])).content.decode()
    assert "the ensemble&#x27;s defaults" in body
    model.featurizer = {"name": "hit_finding", "morgan": "counts", "radius": 2, "n_bits": 2048,
                        "atom_pairs": 2048, "descriptors": "fast"}
    model.hyperparameters = {"target_clip_quantile": 0.5, "count_fingerprints": "morgan", "n_estimators": 400}
    model.save()
    body = client_for(viewer).get(reverse("mlmodels:detail", args=[model.pk])).content.decode()
    assert "counts, radius 2, 2048 columns" in body and "Atom-pair counts" in body
    assert "<code>morgan</code>" in body and "<code>0.5</code>" in body and "<code>400</code>" in body
    assert "the ensemble&#x27;s defaults" not in body


def test_a_failed_version_shows_its_error_to_leads_only(client_for, viewer, lead, model):  # type: ignore[no-untyped-def]
    model.status, model.error = "failed", "ValueError: bad thing at /srv/chemloop/mlmodels/ml/ensemble.py:174"
    model.save()
    url = reverse("mlmodels:detail", args=[model.pk])
    seen = client_for(viewer).get(url).content.decode()
    assert "training failed" in seen and "/srv/chemloop" not in seen and "Training this version failed" in seen
    assert "/srv/chemloop/mlmodels/ml/ensemble.py" in client_for(lead).get(url).content.decode()


def test_the_uncertainty_calibration_curve_is_drawn_for_regression(client_for, viewer, scored):  # type: ignore[no-untyped-def]
    body = client_for(viewer).get(reverse("mlmodels:detail", args=[scored.pk])).content.decode()
    assert "Calibration of the uncertainty" in body and "nominal coverage of mean ± z·std" in body
