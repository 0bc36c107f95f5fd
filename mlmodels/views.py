"""Model pages: lineages, one version's metrics and charts, downloads, explanations."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from compounds.models import Compound
from config import charts
from config.roles import VIEWER, role_required
from mlmodels import selectors, services
from mlmodels.ml.metrics import coverage_curve, primary_metric
from mlmodels.models import MLModel

logger = logging.getLogger(__name__)

# (key, label, which way is better) in the order a modeller reads them.
REGRESSION_METRICS = [
    ("rmse", "RMSE", "lower"),
    ("mae", "MAE", "lower"),
    ("r2", "R²", "higher"),
    ("spearman", "Spearman ρ", "higher"),
    ("coverage_95", "95% interval coverage (ideal 0.95)", None),
    ("uncertainty_spearman", "Uncertainty–error Spearman ρ", "higher"),
    ("mean_std", "Mean predictive std", None),
    ("mean_spread", "Mean ensemble spread (std of the members)", None),
    ("n", "Validation compounds", None),
]
CLASSIFICATION_METRICS = [
    ("roc_auc", "ROC-AUC", "higher"),
    ("pr_auc", "PR-AUC", "higher"),
    ("accuracy", "Accuracy", "higher"),
    ("balanced_accuracy", "Balanced accuracy", "higher"),
    ("f1_macro", "F1 (macro)", "higher"),
    ("log_loss", "Log loss", "lower"),
    ("brier", "Brier score", "lower"),
    ("ece", "Expected calibration error", "lower"),
    ("n", "Validation compounds", None),
]


def metric_spec(model: MLModel) -> list[tuple[str, str, str | None]]:
    return CLASSIFICATION_METRICS if model.assay.is_classification else REGRESSION_METRICS


@role_required(VIEWER)
def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "mlmodels/list.html", {"lineages": selectors.model_lineages()})


def _get_model_for_user(pk: int) -> MLModel:
    """Every role (viewer and up) may read every model; only the row must exist."""
    return get_object_or_404(MLModel.objects.select_related("assay", "validation_set", "parent", "created_by"), pk=pk)


@role_required(VIEWER)
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model = _get_model_for_user(pk)
    metrics = model.metrics or {}
    spec = metric_spec(model)
    versions = selectors.model_versions(model=model)
    key, direction = primary_metric("classification" if model.assay.is_classification else "regression")
    context = {
        "model": model,
        "metric_rows": [(label, metrics.get(k), better) for k, label, better in spec if k in metrics],
        "versions": _version_rows(versions, key, direction),
        "primary_key": key,
        "primary_label": next(label for k, label, _ in spec if k == key),
        "charts": _model_charts(model),
        "has_artifact": bool(model.artifact),
        "settings_rows": selectors.model_settings(model=model, spec=services.model_feature_spec(model)),
    }
    return render(request, "mlmodels/detail.html", context)


def _version_rows(versions: list[MLModel], key: str, direction: str) -> list[dict[str, Any]]:
    """Each version with its primary metric and the change from its parent, signed "better"."""
    by_pk = {v.pk: v for v in versions}
    rows = []
    for v in versions:
        value = (v.metrics or {}).get(key)
        parent = by_pk.get(v.parent_id) if v.parent_id else None
        before = (parent.metrics or {}).get(key) if parent else None
        delta = value - before if isinstance(value, (int, float)) and isinstance(before, (int, float)) else None
        better = None if delta is None or delta == 0 else (delta < 0) == (direction == "lower")
        rows.append({"model": v, "value": value, "delta": delta, "better": better})
    return rows


def _model_charts(model: MLModel) -> dict[str, str]:
    metrics = model.metrics or {}
    out: dict[str, str] = {}
    if not model.assay.is_classification:
        if metrics.get("y_true") and metrics.get("y_pred"):
            out["parity"] = charts.parity_plot(
                y_true=metrics["y_true"], y_pred=metrics["y_pred"], y_std=metrics.get("y_std"), units=model.assay.units
            )
        if metrics.get("y_true") and metrics.get("y_std"):
            curve = coverage_curve(metrics["y_true"], metrics["y_pred"], metrics["y_std"])
            out["calibration"] = charts.reliability_diagram(
                confidence=[p for p, _ in curve], accuracy=[o for _, o in curve], counts=[len(metrics["y_true"])] * len(curve),
                x_label="nominal coverage of mean ± z·std", y_label="share of measured values inside",
            )
        return out
    if metrics.get("confusion_matrix"):
        out["confusion"] = charts.heatmap(matrix=metrics["confusion_matrix"], labels=model.assay.classes)
    # A calibration curve needs per-compound probabilities; metrics stores them only when the
    # trainer kept them, otherwise the page shows the ECE and says why there is no curve.
    if metrics.get("y_true") and metrics.get("proba"):
        out["calibration"] = _reliability(np.asarray(metrics["y_true"], int), np.asarray(metrics["proba"], float))
    return out


def _reliability(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> str:
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    conf, acc, counts = [], [], []
    for b in range(bins):
        mask = idx == b
        counts.append(int(mask.sum()))
        conf.append(float(confidence[mask].mean()) if mask.any() else 0.0)
        acc.append(float(correct[mask].mean()) if mask.any() else 0.0)
    return charts.reliability_diagram(confidence=conf, accuracy=acc, counts=counts)


@require_GET
@role_required(VIEWER)
def model_artifact(request: HttpRequest, pk: int) -> FileResponse:
    model = _get_model_for_user(pk)
    root = Path(settings.ARTIFACT_ROOT).resolve()
    path = (root / model.artifact).resolve() if model.artifact else None
    # The stored path is relative to ARTIFACT_ROOT; refuse anything that would escape it.
    if path is None or root not in path.parents or not path.is_file():
        raise Http404("This version has no artifact file.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"{_slug(model)}.joblib")


@require_GET
@role_required(VIEWER)
def model_metrics_json(request: HttpRequest, pk: int) -> HttpResponse:
    model = _get_model_for_user(pk)
    payload = {
        "model": model.name,
        "version": model.version,
        "assay": model.assay.name,
        "status": model.status,
        "training_size": model.training_size,
        "validation_set": model.validation_set.name,
        "trained_at": model.trained_at.isoformat() if model.trained_at else None,
        "metrics": model.metrics or {},
    }
    response = HttpResponse(json.dumps(payload, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{_slug(model)}-metrics.json"'
    return response


def _slug(model: MLModel) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in model.name).strip("-").lower() + f"-v{model.version}"


@require_GET
@role_required(VIEWER)
def model_explain(request: HttpRequest, pk: int, compound_pk: int) -> HttpResponse:
    """SHAP atom map fragment, loaded lazily so the page around it renders at once."""
    model = _get_model_for_user(pk)
    compound = get_object_or_404(Compound, pk=compound_pk)
    class_raw = request.GET.get("class", "")
    class_index = int(class_raw) if class_raw.isdigit() else None
    # The artifact path is unique per trained version, so a cached fragment can never be stale.
    key = f"explain:{model.artifact}:{compound.pk}:{class_index}"
    html = cache.get(key)
    if html is None:
        html = render_to_string("mlmodels/partials/_explain.html", _explain_context(model, compound, class_index))
        cache.set(key, html, 60 * 60)
    return HttpResponse(html)


def _explain_context(model: MLModel, compound: Compound, class_index: int | None) -> dict[str, Any]:
    try:
        explanation = services.model_explain(model=model, compound=compound, class_index=class_index)
    except Exception as exc:  # noqa: BLE001 - an explanation is optional; the page must never break
        logger.warning("explanation of %s for %s failed: %s", compound.pk, model, exc)
        return {"model": model, "error": getattr(exc, "message", None) or "the model could not explain this compound"}
    target = model.assay.classes[class_index] if class_index is not None and model.assay.is_classification else None
    return {"model": model, "explanation": explanation, "target_class": target}


@require_GET
@role_required(VIEWER)
def compound_predictions(request: HttpRequest, compound_pk: int) -> HttpResponse:
    """Fragment for the compound page: each relevant active model's prediction, then its atom map."""
    compound = get_object_or_404(Compound, pk=compound_pk)
    rows = []
    for model in selectors.models_for_compound(compound=compound):
        try:
            pred = services.model_predict(model=model, compound_ids=[compound.pk])[0]
            rows.append({"model": model, "pred": pred, "chart": _prediction_chart(model, pred), "error": pred.error})
        except Exception as exc:  # noqa: BLE001 - one broken model must not hide the others
            logger.warning("prediction of %s by %s failed: %s", compound.pk, model, exc)
            rows.append({"model": model, "pred": None, "chart": "", "error": getattr(exc, "message", str(exc))})
    return render(request, "mlmodels/partials/_compound_predictions.html", {"compound": compound, "rows": rows})


def _prediction_chart(model: MLModel, pred: Any) -> str:
    if pred.prediction is None:
        return ""
    if model.assay.is_classification and pred.probabilities:
        return charts.probability_bars(classes=model.assay.classes, probabilities=pred.probabilities)
    span = selectors.assay_value_range(assay=model.assay) or (pred.prediction - 1, pred.prediction + 1)
    std = pred.predictive_std if pred.predictive_std is not None else pred.uncertainty
    return charts.interval_bar(mean=pred.prediction, std=std or 0.0, lo=span[0], hi=span[1],
                               units=model.assay.units)
