"""Reads of model lineages and of what the model pages show next to a prediction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, Max, Min, OuterRef, QuerySet

from compounds.models import Assay, Compound, Measurement
from compounds.selectors import compound_similar
from labeling.models import LabelQueueItem
from mlmodels.ml.ensemble import Calibration
from mlmodels.ml.features import FeatureSpec
from mlmodels.ml.metrics import primary_metric
from mlmodels.models import MLModel, ModelStatus


def models_list() -> QuerySet[MLModel]:
    return MLModel.objects.select_related("assay", "validation_set", "created_by")


def model_get(*, model_id: int) -> MLModel:
    from config.exceptions import NotFound

    model = models_list().filter(pk=model_id).first()
    if model is None:
        raise NotFound("No such model.")
    return model


def lineage_active_version(model: MLModel) -> MLModel | None:
    """The active version of `model`'s lineage (the one that is retrained and labeled next)."""
    if model.status == ModelStatus.ACTIVE:
        return model
    return models_list().filter(name=model.name, status=ModelStatus.ACTIVE).first()


def lineage_active_version_id(*, model_id: int) -> int | None:
    """The id of the active version of the lineage model `model_id` belongs to (None if unknown)."""
    model = MLModel.objects.filter(pk=model_id).first()
    active = lineage_active_version(model) if model is not None else None
    return active.pk if active is not None else None


def models_active() -> QuerySet[MLModel]:
    return MLModel.objects.filter(status=ModelStatus.ACTIVE).select_related("assay").order_by("name")


@dataclass
class Lineage:
    name: str
    current: MLModel  # the active version, else the newest one
    n_versions: int
    metric_key: str
    metric_direction: str

    @property
    def metric_value(self) -> float | None:
        value = (self.current.metrics or {}).get(self.metric_key)
        return float(value) if isinstance(value, (int, float)) else None


def model_lineages() -> list[Lineage]:
    """One row per lineage: its active version (or newest, if none is active)."""
    by_name: dict[str, list[MLModel]] = {}
    for m in MLModel.objects.select_related("assay").order_by("name", "-version"):
        by_name.setdefault(m.name, []).append(m)
    out = []
    for name, versions in by_name.items():
        current = next((v for v in versions if v.status == ModelStatus.ACTIVE), versions[0])
        key, direction = primary_metric("classification" if current.assay.is_classification else "regression")
        out.append(Lineage(name, current, len(versions), key, direction))
    return out


def model_versions(*, model: MLModel) -> list[MLModel]:
    return list(MLModel.objects.filter(name=model.name).select_related("assay", "created_by").order_by("-version"))


def models_relevant_to(*, compound: Compound) -> QuerySet[MLModel]:
    """Active models whose assay the compound is measured in or whose queue holds it.

    EXISTS per model, not joins: joining each model to its assay's measurements and its
    queue items made a (labels x queue items) row product, DISTINCT-ed after the fact: 38M
    rows and 1.3 s for every compound page on a model with 3,800 labels and 10,000 items.
    """
    measured = Measurement.objects.filter(assay=OuterRef("assay"), compound=compound)
    queued = LabelQueueItem.objects.filter(model=OuterRef("pk"), compound=compound)
    return models_active().filter(Exists(measured) | Exists(queued))


def models_for_compound(*, compound: Compound, limit: int = 6) -> list[MLModel]:
    """Active models whose assay the compound is measured in or queued for; all active ones otherwise."""
    models = list(models_relevant_to(compound=compound)[:limit])
    return models or list(models_active()[:limit])


def assay_value_range(*, assay: Assay) -> tuple[float, float] | None:
    agg = Measurement.objects.filter(assay=assay).aggregate(lo=Min("value"), hi=Max("value"))
    if agg["lo"] is None:
        return None
    return float(agg["lo"]), float(agg["hi"])


@dataclass
class LabeledNeighbour:
    compound: Compound
    similarity: float
    values: list[str]  # formatted labels in the assay, newest first


def assay_similar_labeled(*, compound: Compound, assay: Assay, k: int = 5) -> list[LabeledNeighbour]:
    """The k most similar compounds that have a label in `assay`, with those labels."""
    similar = compound_similar(
        compound=compound, k=k, queryset=Compound.objects.filter(measurements__assay=assay).distinct()
    )
    values: dict[int, list[str]] = {}
    rows = Measurement.objects.filter(assay=assay, compound_id__in=[s.compound.pk for s in similar]).order_by(
        "-created_at"
    )
    for cid, value in rows.values_list("compound_id", "value"):
        values.setdefault(cid, []).append(assay.format_value(value))
    return [LabeledNeighbour(s.compound, s.similarity, values.get(s.compound.pk, [])) for s in similar]


def predictive_std(*, model: MLModel, std: float | None) -> float | None:
    """A regression version's ensemble spread → the std of the error to expect, with the
    calibration fit on its out-of-bag errors (`mlmodels.ml.ensemble.Calibration`, kept in
    its metrics); the spread itself for versions trained before it."""
    calibration = (model.metrics or {}).get("uncertainty_calibration")
    if std is None or not calibration:
        return std
    return float(Calibration.from_dict(calibration).apply(float(std)))


def metrics_headline(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Metrics without the per-compound arrays, for JSON downloads and tables."""
    return {k: v for k, v in (metrics or {}).items() if k not in ("y_true", "y_pred", "y_std", "proba")}


def model_settings(*, model: MLModel, spec: FeatureSpec) -> list[tuple[str, str]]:
    """What a version was trained with, as (label, value) rows for its page.

    `spec` is the version's resolved featurizer (`services.model_feature_spec`), so an
    empty stored featurizer shows the default it really used. Then every
    hyper-parameter the version sets; anything it does not set is the ensemble's tuned
    default (said so, rather than listed).
    """
    rows = [("Featurizer", spec.name)]
    if spec.morgan != "none":
        rows.append(("Morgan", f"{spec.morgan}, radius {spec.radius}, {spec.n_bits} columns"))
    if spec.atom_pairs:
        rows.append(("Atom-pair counts", f"{spec.atom_pairs} columns"))
    if spec.descriptors != "none":
        rows.append(("RDKit descriptors", spec.descriptors))
    hyper = model.hyperparameters or {}
    rows += [(key, _setting_value(hyper[key])) for key in sorted(hyper)]
    if not hyper:
        rows.append(("Hyper-parameters", "the ensemble's defaults"))
    return rows


def _setting_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
