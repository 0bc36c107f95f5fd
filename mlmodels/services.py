"""Model lifecycle: validation sets, training, versions, prediction, explanation.

Turns querysets into arrays for `mlmodels.ml` (framework-free) and results back
into rows.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from rdkit import Chem

from compounds import chemistry
from compounds.models import Assay, Compound, Measurement
from compounds.selectors import copy_fixed_width
from config.exceptions import Conflict, NotFound, ValidationFailed
from mlmodels.ml import applicability, artifacts, features, metrics, physchem
from mlmodels.ml.ensemble import BootstrapEnsemble, ClassificationPrediction, RegressionPrediction
from mlmodels.models import MLModel, ModelStatus, ValidationSet
from mlmodels.selectors import lineage_active_version, predictive_std

logger = logging.getLogger(__name__)

# Fewer labeled training compounds than this cannot make a meaningful ensemble.
MIN_TRAINING_SIZE = 10
# Rows per database read when scoring a pool.
POOL_CHUNK = 50_000
_IN_BATCH = 10_000
# Ensemble hyper-parameters a user may set (everything else stays at the tuned defaults).
HYPERPARAMETER_KEYS = {
    "n_estimators", "learning_rate", "max_depth", "subsample", "colsample_bytree",
    "min_child_weight", "reg_lambda", "random_state",
    # Hit finding (see mlmodels.ml.presets.HIT_FINDING): clip the non-hit tail of the
    # training targets; the side defaults to the assay's direction.
    "target_clip_quantile", "target_clip_side",
    # The kernel-ridge half of regression members (mlmodels.ml.smooth); 0 turns it off.
    # smooth_all_rows: the share of its mean fit on all rows instead of the bootstraps.
    "smooth_weight", "smooth_landmarks", "smooth_gamma", "smooth_alpha", "smooth_all_rows",
    # Its MinMax-kernel part on the count fingerprints (hit finding); the columns follow
    # from the featurizer and `count_fingerprints` (COUNT_FINGERPRINTS).
    "count_weight", "count_alpha", "count_landmarks", "count_fingerprints",
    # The physico-chemical prior (mlmodels.ml.physchem: learned melting point and log P;
    # the key keeps the name it had when it held the melting point only): on by default.
    "melting_point_prior",
    # How it is used in regression: its columns' weight in the kernel half's distance,
    # and the share of a line in its GSE column the members learn around (0 = none).
    "smooth_prior_weight", "prior_baseline",
}
# Which leading count columns of X the MinMax part compares. Atom-pair counts are ~4x
# as many per molecule as Morgan environments, so on both blocks the kernel is mostly
# an atom-pair similarity; "morgan" is the classic MinMax/Tanimoto kernel on Morgan
# counts alone (the HIT_FINDING choice, BENCHMARKS.md "Hit finding").
COUNT_FINGERPRINTS = ("morgan+atom_pairs", "morgan")

ProgressFn = Callable[[str, int], None]


def _noop(stage: str, percent: int) -> None:
    return None


# --- Features -----------------------------------------------------------------


def model_feature_spec(model: MLModel) -> features.FeatureSpec:
    return features.FeatureSpec.from_dict(model.featurizer) if model.featurizer else features.DEFAULT_SPEC


def compound_features_ensure(*, spec: features.FeatureSpec, compound_ids: Sequence[int]) -> int:
    """Compute and store the per-compound features `spec` needs where they are missing.

    Done once per compound (like the fingerprint), so scoring never re-parses.
    Returns how many compounds were computed.
    """
    if spec.n_stored == 0:
        return 0
    missing = list(
        Compound.objects.filter(id__in=list(compound_ids))
        .exclude(feature_set=spec.name)
        .values_list("id", "canonical_smiles")
    )
    if not missing:
        return 0
    vectors = np.stack([features.compute_stored_features(Chem.MolFromSmiles(smiles), spec) for _, smiles in missing])
    # A vector and its prior columns are written together, so stored columns always
    # belong to the stored vector (without the prior the old ones are cleared).
    prior = physchem.load_prior_if_cached() if physchem.prior_default(spec) else None
    columns = prior.stored_columns(vectors, spec) if prior is not None else None
    updates = [
        Compound(
            id=pk,
            feature_vector=vectors[i].tobytes(),
            feature_set=spec.name,
            prior_columns=columns[i].tobytes() if columns is not None else None,
            prior_key=prior.key if prior is not None else "",
        )
        for i, (pk, _) in enumerate(missing)
    ]
    Compound.objects.bulk_update(
        updates, ["feature_vector", "feature_set", "prior_columns", "prior_key"], batch_size=2000
    )
    return len(updates)


def compound_prior_ensure(*, spec: features.FeatureSpec, compound_ids: Sequence[int], prior: physchem.PhyschemPrior) -> int:
    """Store `prior`'s columns for the compounds whose stored `spec` vector has none under
    its key, from that vector (no molecule is parsed). Returns how many were stored."""
    rows = [
        r
        for r in Compound.objects.filter(id__in=list(compound_ids), feature_set=spec.name)
        .exclude(prior_key=prior.key)
        .values_list("id", "feature_vector")
        if r[1] is not None and len(r[1]) == 4 * spec.n_stored  # others get recomputed, prior and all
    ]
    if not rows:
        return 0
    columns = prior.stored_columns(features.stored_from_bytes([r[1] for r in rows], spec), spec)
    updates = [Compound(id=r[0], prior_columns=columns[i].tobytes(), prior_key=prior.key) for i, r in enumerate(rows)]
    Compound.objects.bulk_update(updates, ["prior_columns", "prior_key"], batch_size=2000)
    return len(updates)


def compound_features(
    *, spec: features.FeatureSpec, compound_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """(packed fingerprints, stored features) for the ids, in the order given."""
    ids = [int(i) for i in compound_ids]
    compound_features_ensure(spec=spec, compound_ids=ids)
    fields = ("id", "fingerprint", "feature_vector") if spec.n_stored else ("id", "fingerprint")
    rows = {r[0]: r for r in Compound.objects.filter(id__in=ids).values_list(*fields)}
    if len(rows) != len(set(ids)):
        raise NotFound("Some compounds do not exist.")
    ordered = [rows[i] for i in ids]
    packed = chemistry.fingerprints_to_matrix([r[1] for r in ordered])
    stored = features.stored_from_bytes([r[2] for r in ordered], spec) if spec.n_stored else None
    return packed, stored


def pool_id_array(queryset: QuerySet[Compound]) -> np.ndarray:
    """The pool's compound ids, ascending, as int64 (one query, 8 bytes a compound)."""
    return np.fromiter(
        queryset.order_by("id").values_list("id", flat=True).iterator(chunk_size=_IN_BATCH), dtype=np.int64
    )


class ChunkRows(NamedTuple):
    ids: np.ndarray
    packed: np.ndarray  # packed fingerprints
    stored: np.ndarray | None  # stored feature vectors
    # The prior's stored columns when asked for (`prior`): NaN rows where none are stored
    # under its key; the ensemble computes those (BootstrapEnsemble.member_input).
    prior: np.ndarray | None = None


# (key, number of columns) of the physico-chemical prior whose stored columns to read.
PriorRead = tuple[str, int]


def _prior_read(ensemble: BootstrapEnsemble, spec: features.FeatureSpec) -> PriorRead | None:
    prior = getattr(ensemble, "prior_", None)
    if prior is None or not spec.n_stored:
        return None
    return prior.key, prior.n_columns


def pool_chunks(
    *,
    pool_ids: np.ndarray,
    spec: features.FeatureSpec,
    chunk_size: int = POOL_CHUNK,
    prior: PriorRead | None = None,
) -> Iterator[ChunkRows]:
    """Walk a pool by primary key: (ids, packed fingerprints, stored features) per chunk,
    and the stored columns of the prior `prior` names.

    The pool's ids come first (`pool_id_array`: one query, 8 bytes a compound), then
    each chunk's rows by primary key. Asking the pool's own query for "the next chunk_size by id" instead
    lets PostgreSQL join and sort the whole pool for every chunk when its statistics do
    not know the pool's size (after a bulk import, before ANALYZE): measured 6 s per
    50,000-row chunk of a 1M dataset pool, vs < 1 s by primary key. On PostgreSQL the
    rows come through binary COPY straight into arrays (`_chunk_rows_copy`).
    Compounds whose stored features are missing are computed and stored on the way
    (normally the backfill job has done that already).
    """
    for start in range(0, pool_ids.size, chunk_size):
        chunk = pool_ids[start : start + chunk_size]
        fast = _chunk_rows_copy(chunk, spec, prior) if connection.vendor == "postgresql" else None
        if fast is None:
            rows = _chunk_rows_orm(chunk.tolist(), spec, prior)
        else:
            # Rows the COPY left out (features missing or from another featurizer, or
            # deleted compounds): the ordinary path computes and stores their features.
            rest = np.setdiff1d(chunk, fast[0], assume_unique=True)
            more = _chunk_rows_orm(rest.tolist(), spec, prior) if rest.size else None
            rows = fast if more is None else _merged_by_id(fast, more)
        if rows is not None and rows[0].size:
            yield rows


def _merged_by_id(a: ChunkRows, b: ChunkRows) -> ChunkRows:
    ids = np.concatenate([a.ids, b.ids])
    order = np.argsort(ids, kind="stable")

    def merged(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y])[order]

    return ChunkRows(ids[order], np.concatenate([a.packed, b.packed])[order], merged(a.stored, b.stored), merged(a.prior, b.prior))


def _prior_array(blobs: Sequence[tuple[str, Any]], prior: PriorRead) -> np.ndarray:
    """(n, columns) float32 from (key, bytes) per row: NaN where nothing is stored under the key."""
    key, k = prior
    out = np.full((len(blobs), k), np.nan, dtype=np.float32)
    for i, (row_key, blob) in enumerate(blobs):
        if row_key == key and blob is not None and len(blob) == 4 * k:
            out[i] = np.frombuffer(blob, dtype=np.float32)
    return out


def _chunk_rows_orm(chunk: list[int], spec: features.FeatureSpec, prior: PriorRead | None = None) -> ChunkRows | None:
    """The chunk's rows through the ORM (any database); None if none exist any more."""
    fields: tuple[str, ...] = ("id", "fingerprint")
    if spec.n_stored:
        fields += ("feature_vector", "feature_set", "prior_key", "prior_columns")
    rows = []
    # IN lists of at most _IN_BATCH ids: SQLite refuses more than 32,766 variables.
    for at in range(0, len(chunk), _IN_BATCH):
        batch = chunk[at : at + _IN_BATCH]
        rows += Compound.objects.filter(id__in=batch).order_by("id").values_list(*fields)
    if not rows:
        return None  # deleted since the ids were read
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    packed = chemistry.fingerprints_to_matrix([r[1] for r in rows])
    stored = prior_columns = None
    if spec.n_stored:
        stale = [int(r[0]) for r in rows if r[3] != spec.name]
        if stale:
            compound_features_ensure(spec=spec, compound_ids=stale)
            fresh = {r[0]: r for r in Compound.objects.filter(id__in=stale).values_list(*fields)}
            rows = [fresh.get(r[0], r) for r in rows]
        stored = features.stored_from_bytes([r[2] for r in rows], spec)
        if prior is not None:
            prior_columns = _prior_array([(r[4], r[5]) for r in rows], prior)
    return ChunkRows(ids, packed, stored, prior_columns)


def _chunk_rows_copy(chunk: np.ndarray, spec: features.FeatureSpec, prior: PriorRead | None = None) -> ChunkRows | None:
    """The chunk's complete rows through binary COPY (PostgreSQL): 0.36 s vs 1.30 s per 50k by the ORM.

    Only rows whose fingerprint and stored features have the expected width and
    featurizer are returned (the query itself guarantees it), in id order; the caller
    reads the others the ordinary way. None if the result cannot be parsed.
    """
    table = connection.ops.quote_name(Compound._meta.db_table)
    columns = ["id", "fingerprint"]
    widths = [8, chemistry.FP_BYTES]
    conditions = [f"octet_length(fingerprint) = {chemistry.FP_BYTES}"]
    params: list[str] = []
    if spec.n_stored:
        columns.append("feature_vector")
        widths.append(4 * spec.n_stored)
        if prior is not None:
            # Fixed width either way: the stored columns under the key, else float32 NaNs
            # (little-endian 0x7fc00000), which the ensemble computes.
            key, k = prior
            columns.append(
                f"CASE WHEN prior_key = %s AND octet_length(prior_columns) = {4 * k} THEN prior_columns "
                f"ELSE decode(repeat('0000c07f', {k}), 'hex') END"
            )
            widths.append(4 * k)
            params.append(key)
        conditions += ["feature_set = %s", f"octet_length(feature_vector) = {4 * spec.n_stored}"]
        params.append(spec.name)
    # ids are int64 from the database, so the array literal is safe to inline; COPY
    # takes no bind parameters, hence mogrify for the featurizer name.
    id_array = "'{" + ",".join(map(str, chunk.tolist())) + "}'::bigint[]"
    # No ORDER BY: PostgreSQL would sort ~55 MB a chunk, spilling to disk at the default
    # work_mem (~85 ms of server CPU per 50k rows, measured); numpy sorts the ids instead.
    query = f"SELECT {', '.join(columns)} FROM {table} WHERE id = ANY({id_array}) AND " + " AND ".join(conditions)
    parsed = copy_fixed_width(query, params or None, widths)
    if parsed is None:
        return None
    ids = parsed[0].view(">i8").ravel().astype(np.int64)
    packed = parsed[1]
    stored = parsed[2].view("<f4") if spec.n_stored else None
    prior_columns = parsed[3].view("<f4") if spec.n_stored and prior is not None else None
    if ids.size > 1 and not bool((ids[1:] > ids[:-1]).all()):
        order = np.argsort(ids, kind="stable")
        ids, packed = ids[order], packed[order]
        stored = stored[order] if stored is not None else None
        prior_columns = prior_columns[order] if prior_columns is not None else None
    return ChunkRows(ids, packed, stored, prior_columns)


# --- Training data ------------------------------------------------------------


def assay_training_data(
    *, assay: Assay, exclude_ids: set[int] | None = None, include_ids: set[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(compound ids, targets): replicate values averaged (regression) or the latest class."""
    qs = Measurement.objects.filter(assay=assay).order_by("compound_id", "created_at", "id")
    if include_ids is not None:
        qs = qs.filter(compound_id__in=include_ids)
    by_compound: dict[int, list[float]] = {}
    for cid, value in qs.values_list("compound_id", "value").iterator(chunk_size=10_000):
        if exclude_ids and cid in exclude_ids:
            continue
        by_compound.setdefault(cid, []).append(value)
    ids = np.fromiter(by_compound.keys(), dtype=np.int64, count=len(by_compound))
    if assay.is_classification:
        y = np.fromiter((v[-1] for v in by_compound.values()), dtype=np.int64, count=len(by_compound))
    else:
        y = np.fromiter((float(np.mean(v)) for v in by_compound.values()), dtype=np.float64, count=len(by_compound))
    return ids, y


def validation_set_create(
    *,
    assay: Assay,
    name: str,
    compound_ids: Sequence[int] | None = None,
    fraction: float = 0.2,
    seed: int = 0,
    allow_empty: bool = False,
) -> ValidationSet:
    """Freeze the validation compounds: an explicit list, or a seeded (stratified) fraction."""
    if compound_ids is None:
        if not 0 < fraction < 1:
            raise ValidationFailed("validation fraction must be between 0 and 1", extra={"field": "validation_fraction"})
        ids, y = assay_training_data(assay=assay)
        if ids.size < 2 * MIN_TRAINING_SIZE:
            raise ValidationFailed(
                f"{assay.name} has {ids.size} labeled compounds; at least {2 * MIN_TRAINING_SIZE} are needed "
                "to hold out a validation set",
                extra={"field": "assay"},
            )
        rng = np.random.default_rng(seed)
        chosen: list[int] = []
        groups = [ids[y == c] for c in np.unique(y)] if assay.is_classification else [ids]
        for group in groups:  # stratified for classification
            k = max(1, round(fraction * group.size))
            chosen.extend(int(i) for i in rng.choice(group, size=k, replace=False))
        compound_ids = sorted(chosen)
        description = f"random {fraction:.0%} of measured compounds, seed {seed}"
    else:
        compound_ids = sorted({int(i) for i in compound_ids})
        description = f"explicit list of {len(compound_ids)} compounds"
        if not compound_ids and not allow_empty:
            raise ValidationFailed("the validation set is empty", extra={"field": "validation_compound_ids"})
    vs = ValidationSet.objects.create(assay=assay, name=name, description=description)
    vs.compounds.add(*compound_ids)
    return vs


# --- Training -----------------------------------------------------------------


def _artifact_path(model: MLModel) -> Path:
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", model.name).strip("-").lower() or "model"
    return Path(slug) / f"v{model.version}-{uuid.uuid4().hex[:8]}.joblib"


def validation_targets(validation: ValidationSet) -> tuple[np.ndarray, np.ndarray]:
    """(compound ids, values) the validation set is scored on: the values frozen when it
    was first used. A set used for the first time (or stored before values were frozen)
    freezes what its compounds' measurements say now."""
    if not validation.values:
        val_ids = set(validation.compounds.values_list("id", flat=True))
        ids, y = assay_training_data(assay=validation.assay, include_ids=val_ids)
        validation.values = {str(int(i)): float(v) for i, v in zip(ids, y, strict=True)}
        if validation.values:
            validation.save(update_fields=["values"])
        return ids, y
    frozen = {int(k): v for k, v in validation.values.items()}
    # A compound deleted from the registry since cannot be scored; it drops out.
    present = set(Compound.objects.filter(id__in=list(frozen)).values_list("id", flat=True))
    ids = np.array(sorted(present), dtype=np.int64)
    dtype = np.int64 if validation.assay.is_classification else np.float64
    return ids, np.array([frozen[int(i)] for i in ids], dtype=dtype)


def _evaluate(
    ensemble: BootstrapEnsemble, spec: features.FeatureSpec, assay: Assay, validation: ValidationSet
) -> dict[str, Any]:
    ids, y = validation_targets(validation)
    calibration = getattr(ensemble, "calibration_", None)
    # Stored with the metrics so pages can turn a stored spread into an interval without the artifact.
    calibrated = {"uncertainty_calibration": calibration.to_dict()} if calibration is not None else {}
    if ids.size == 0:
        return {"n": 0, **calibrated}
    packed, stored = compound_features(spec=spec, compound_ids=ids)
    pred = ensemble.predict(features.build_matrix(spec, packed, stored), return_members=False)
    if isinstance(pred, RegressionPrediction):
        # Coverage, the page's error bars and its coverage curve use the predictive std
        # (the spread calibrated on out-of-bag errors); the Spearman ranks by the spread.
        std = ensemble.predictive_std(pred.std)
        result = metrics.regression_metrics(y, pred.mean, std, y_spread=pred.std)
        result["y_true"] = [round(float(v), 4) for v in y]
        result["y_pred"] = [round(float(v), 4) for v in pred.mean]
        result["y_std"] = [round(float(v), 4) for v in std]
        return result | calibrated
    result = metrics.classification_metrics(y, pred.proba, n_classes=len(assay.classes) or None)
    # Per compound, as for regression: the model page draws the calibration curve from them.
    result["y_true"] = [int(v) for v in y]
    result["proba"] = [[round(float(p), 4) for p in row] for row in pred.proba]
    return result


def _count_fingerprints(value: Any) -> str:
    if value not in COUNT_FINGERPRINTS:
        raise ValidationFailed(
            f"count_fingerprints must be one of {', '.join(COUNT_FINGERPRINTS)}, got {value!r}",
            extra={"field": "hyperparameters.count_fingerprints"},
        )
    return str(value)


def _melting_point_prior(value: Any, spec: features.FeatureSpec) -> bool:
    """The `melting_point_prior` setting, checked: a bool, and only where X has its descriptors."""
    if not isinstance(value, bool):
        raise ValidationFailed(
            f"melting_point_prior must be true or false, got {value!r}",
            extra={"field": "hyperparameters.melting_point_prior"},
        )
    if value and spec.descriptors != physchem.DESCRIPTORS:
        raise ValidationFailed(
            f"melting_point_prior needs the {physchem.DESCRIPTORS!r} RDKit descriptors; "
            f"featurizer {spec.name!r} has {spec.descriptors!r}",
            extra={"field": "hyperparameters.melting_point_prior"},
        )
    return value


def model_fit(
    *, model: MLModel, progress: ProgressFn = _noop
) -> tuple[BootstrapEnsemble, dict[str, Any], np.ndarray]:
    """Fit the model's ensemble on every measurement except the validation compounds."""
    assay = model.assay
    spec = model_feature_spec(model)
    val_ids = set(model.validation_set.compounds.values_list("id", flat=True))
    progress("loading training data", 5)
    ids, y = assay_training_data(assay=assay, exclude_ids=val_ids)
    if ids.size < MIN_TRAINING_SIZE:
        raise ValidationFailed(
            f"{model.name} has {ids.size} labeled training compounds; at least {MIN_TRAINING_SIZE} are needed."
        )
    if assay.is_classification and np.unique(y).size < 2:
        raise ValidationFailed("Classification training needs at least two classes among the labels.")
    progress("computing features", 15)
    packed, stored = compound_features(spec=spec, compound_ids=ids)
    X = features.build_matrix(spec, packed, stored)
    params = {k: v for k, v in (model.hyperparameters or {}).items() if k in HYPERPARAMETER_KEYS}
    params.setdefault("random_state", 0)
    if params.get("target_clip_quantile") is not None:
        if assay.is_classification:
            params.pop("target_clip_quantile")
            params.pop("target_clip_side", None)
        else:
            # Hits are at the assay's good end, so the other end is the one flattened.
            params.setdefault("target_clip_side", "high" if assay.direction == "minimize" else "low")
    which = _count_fingerprints(params.pop("count_fingerprints", COUNT_FINGERPRINTS[0]))
    if params.get("count_weight"):
        # The count (or bit) fingerprint columns lead X: Morgan, then atom pairs.
        n_morgan = spec.n_bits if spec.morgan != "none" else 0
        params["count_columns"] = n_morgan if which == "morgan" else n_morgan + spec.atom_pairs
        if not params["count_columns"]:  # no fingerprint block to compare
            params.pop("count_weight")
            params.pop("count_columns")
    _melting_point_prior(params.get("melting_point_prior", physchem.prior_default(spec)), spec)
    params = physchem.ensemble_kwargs(spec, params)
    progress("training ensemble", 30)
    ensemble = BootstrapEnsemble(
        n_members=model.n_members,
        algorithm=model.algorithm,
        task="classification" if assay.is_classification else "regression",
        n_classes=len(assay.classes) if assay.is_classification else None,
        **params,
    ).fit(X, y)
    progress("evaluating on the validation set", 80)
    result = _evaluate(ensemble, spec, assay, model.validation_set)
    return ensemble, result, ids


def model_train(*, model: MLModel, progress: ProgressFn = _noop) -> MLModel:
    """Train `model` (status training) and store its artifact and validation metrics.

    The caller decides when it becomes active (see `model_activate`).
    """
    spec = model_feature_spec(model)
    ensemble, result, ids = model_fit(model=model, progress=progress)
    progress("saving artifact", 90)
    rel = _artifact_path(model)
    # The training fingerprints travel with the artifact so applicability can be
    # computed offline (predict_model) and without a database round trip.
    train_packed, _ = compound_features(spec=features.FeatureSpec(), compound_ids=ids)
    artifacts.save_artifact(
        Path(settings.ARTIFACT_ROOT) / rel,
        ensemble,
        feature_spec=spec,
        training_ids=[int(i) for i in ids],
        metrics=result,
        extra={
            "model_name": model.name,
            "version": model.version,
            "assay": model.assay.name,
            "task_type": model.assay.task_type,
            "classes": model.assay.classes,
            "training_fingerprints": train_packed,
        },
    )
    model.artifact = str(rel)
    model.metrics = result
    model.training_size = int(ids.size)
    model.trained_at = timezone.now()
    model.featurizer = spec.to_dict()
    # Recorded, so the model page says what this version used and later versions keep it
    # even if the default changes.
    with_prior = getattr(ensemble, "prior_", None) is not None
    model.hyperparameters = {**(model.hyperparameters or {}), "melting_point_prior": with_prior}
    if getattr(ensemble, "basis_", None) is not None:
        # Likewise for the kernel half's all-rows share (lineages from before it take the
        # default of the day at their next version).
        model.hyperparameters["smooth_all_rows"] = ensemble.smooth_all_rows
    if with_prior and ensemble.task == "regression":
        # How the prior was used, likewise (lineages trained before these settings existed
        # take the defaults of the day at their next version, and keep them from then on).
        model.hyperparameters |= {
            "smooth_prior_weight": ensemble.smooth_prior_weight,
            "prior_baseline": ensemble.prior_baseline,
        }
    model.save(update_fields=["artifact", "metrics", "training_size", "trained_at", "featurizer", "hyperparameters"])
    return model


def model_activate(*, model: MLModel) -> MLModel:
    """Make `model` the lineage's active version; the previous active one is superseded."""
    with transaction.atomic():
        # Supersede first: the database allows one active version per name.
        MLModel.objects.filter(name=model.name, status=ModelStatus.ACTIVE).exclude(pk=model.pk).update(
            status=ModelStatus.SUPERSEDED
        )
        model.status = ModelStatus.ACTIVE
        model.error = ""
        model.save(update_fields=["status", "error"])
    return model


def model_mark_failed(*, model: MLModel, error: str) -> None:
    MLModel.objects.filter(pk=model.pk).update(status=ModelStatus.FAILED, error=error[:5000])
    model.status, model.error = ModelStatus.FAILED, error[:5000]


def model_create_initial(
    *,
    assay: Assay,
    name: str,
    validation_compound_ids: Sequence[int] | None = None,
    validation_fraction: float = 0.2,
    seed: int = 0,
    algorithm: str = "xgboost",
    n_members: int = 10,
    hyperparameters: dict[str, Any] | None = None,
    featurizer: dict[str, Any] | None = None,
    user: Any = None,
    progress: ProgressFn = _noop,
    allow_empty_validation: bool = False,
    preset: str | None = None,
) -> MLModel:
    """Version 1 of a lineage: freeze its validation set, train, activate.

    `preset` ("hit_finding" | "model_improvement", see mlmodels.ml.presets) fills the
    featurizer, algorithm, members and hyper-parameters the benchmarks chose for that goal.
    """
    if preset is not None:
        from mlmodels.ml import presets

        chosen = presets.PRESETS.get(preset)
        if chosen is None:
            raise ValidationFailed(f"unknown preset {preset!r}; choose from {', '.join(presets.PRESETS)}", extra={"field": "preset"})
        featurizer = featurizer or chosen["featurizer"]
        hyperparameters = {**chosen["hyperparameters"], **(hyperparameters or {})}
        algorithm = chosen["algorithm"] if algorithm == "xgboost" else algorithm
        n_members = chosen["n_members"] if n_members == 10 else n_members
    name = name.strip()
    if not name:
        raise ValidationFailed("a model name is required", extra={"field": "name"})
    if MLModel.objects.filter(name=name).exists():
        raise Conflict(f"A model named {name!r} exists already; retrain it to make a new version.")
    if algorithm not in ("xgboost", "rf"):
        raise ValidationFailed("algorithm must be xgboost or rf", extra={"field": "algorithm"})
    if not 1 <= n_members <= 50:
        raise ValidationFailed("members must be between 1 and 50", extra={"field": "n_members"})
    if hyperparameters and "count_fingerprints" in hyperparameters:
        _count_fingerprints(hyperparameters["count_fingerprints"])
    spec = features.FeatureSpec.from_dict(featurizer) if featurizer else features.DEFAULT_SPEC
    if hyperparameters and "melting_point_prior" in hyperparameters:
        _melting_point_prior(hyperparameters["melting_point_prior"], spec)
    with transaction.atomic():
        validation = validation_set_create(
            assay=assay,
            name=f"{name} validation",
            compound_ids=validation_compound_ids,
            fraction=validation_fraction,
            seed=seed,
            allow_empty=allow_empty_validation,
        )
        model = MLModel.objects.create(
            name=name,
            assay=assay,
            version=1,
            status=ModelStatus.TRAINING,
            algorithm=algorithm,
            n_members=n_members,
            hyperparameters=hyperparameters or {},
            featurizer=spec.to_dict(),
            validation_set=validation,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
    try:
        model_train(model=model, progress=progress)
    except Exception as exc:
        model_mark_failed(model=model, error=str(exc))
        raise
    return model_activate(model=model)


def model_version_create(*, parent: MLModel, user: Any = None) -> MLModel:
    """A new (training) version of a lineage with the parent's settings and validation set."""
    latest = MLModel.objects.filter(name=parent.name).order_by("-version").values_list("version", flat=True).first()
    return MLModel.objects.create(
        name=parent.name,
        assay=parent.assay,
        version=(latest or parent.version) + 1,
        parent=parent,
        status=ModelStatus.TRAINING,
        algorithm=parent.algorithm,
        n_members=parent.n_members,
        hyperparameters=parent.hyperparameters,
        featurizer=parent.featurizer,
        validation_set=parent.validation_set,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


# --- Loading and prediction -----------------------------------------------------

_cache_lock = threading.Lock()
_artifact_cache: OrderedDict[str, artifacts.Artifact] = OrderedDict()
_CACHE_SIZE = 4


def model_load(*, model: MLModel) -> artifacts.Artifact:
    """The model's artifact (cached per process); a broken file marks the model failed."""
    if not model.artifact:
        raise Conflict(f"{model} has no trained artifact yet.")
    path = Path(settings.ARTIFACT_ROOT) / model.artifact
    key = str(path)
    with _cache_lock:
        if key in _artifact_cache:
            _artifact_cache.move_to_end(key)
            return _artifact_cache[key]
    try:
        art = artifacts.load_artifact(path)
    except artifacts.ArtifactMissingError as exc:
        # Not marked failed: a missing file is usually this process not seeing the storage the
        # worker wrote to (ARTIFACT_ROOT unset or unmounted on one machine). Marking the active
        # version failed on a page read took the lineage out of selection for good, though the
        # file was fine where it was written.
        raise Conflict(
            f"The artifact of {model} is not found at {path}: is ARTIFACT_ROOT the storage the "
            "worker writes models to?"
        ) from exc
    except artifacts.ArtifactError as exc:
        message = f"The artifact of {model} cannot be used: {exc}"
        model_mark_failed(model=model, error=message)
        raise Conflict(message) from exc
    with _cache_lock:
        _artifact_cache[key] = art
        while len(_artifact_cache) > _CACHE_SIZE:
            _artifact_cache.popitem(last=False)
    return art


def model_training_fingerprints(*, art: artifacts.Artifact) -> np.ndarray:
    stored = (art.extra or {}).get("training_fingerprints")
    if stored is not None:
        return stored
    ids = art.training_ids
    rows = dict(Compound.objects.filter(id__in=ids).values_list("id", "fingerprint"))
    return chemistry.fingerprints_to_matrix([rows[i] for i in ids if i in rows])


def model_training_features(*, art: artifacts.Artifact) -> np.ndarray:
    """The training compounds' rows as the members see them (the model's input X plus the
    prior's columns where it has a prior), in training order."""
    ids = [int(i) for i in art.training_ids]
    existing = set(Compound.objects.filter(id__in=ids).values_list("id", flat=True))
    return _member_rows(art, [i for i in ids if i in existing])


def _model_matrix(art: artifacts.Artifact, compound_ids: Sequence[int]) -> np.ndarray:
    """The compounds' model input X (before the prior's columns), in the order given."""
    packed, stored = compound_features(spec=art.feature_spec, compound_ids=compound_ids)
    return features.build_matrix(art.feature_spec, packed, stored)


def _member_rows(art: artifacts.Artifact, compound_ids: Sequence[int]) -> np.ndarray:
    """The compounds' rows as the artifact's members see them, in the order given."""
    return art.ensemble.member_input(_model_matrix(art, compound_ids))


def model_validation_features(
    *, model: MLModel, limit: int = 5000, with_members: bool = False
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The lineage's validation compounds as the members see them (structures only, never
    their values), for a design aimed at where the model is measured, and with_members the
    regression members' predictions of them (members, T); (None, None) for an empty set.
    A set above `limit` is a seeded sample of it (the design's target, not a metric)."""
    ids = np.array(sorted(model.validation_set.compounds.values_list("id", flat=True)), dtype=np.int64)
    if ids.size == 0:
        return None, None
    if ids.size > limit:
        ids = np.sort(np.random.default_rng(0).choice(ids, limit, replace=False))
    art = model_load(model=model)
    X = _model_matrix(art, ids.tolist())
    members = None
    if with_members:
        pred = art.ensemble.predict(X, return_members=True)
        members = pred.members if isinstance(pred, RegressionPrediction) else None
    return art.ensemble.member_input(X), members


@dataclass
class PoolScores:
    """Model outputs over a pool, aligned by `ids`."""

    ids: np.ndarray
    mean: np.ndarray | None  # regression mean
    std: np.ndarray | None  # regression std
    proba: np.ndarray | None  # classification (n, K)
    member_proba: np.ndarray | None  # (members, n, K)
    applicability: np.ndarray
    fingerprints: np.ndarray | None  # packed (n, 256), when asked for
    # The rows as the members see them (X plus the prior's columns), when asked for, and each
    # column's weight in the kernel half's distance (None: all 1).
    features: np.ndarray | None = None
    feature_weights: np.ndarray | None = None
    members: np.ndarray | None = None  # regression (members, n), when asked for

    @property
    def prediction(self) -> np.ndarray:
        if self.mean is not None:
            return self.mean
        assert self.proba is not None
        return self.proba.argmax(axis=1).astype(np.float64)

    @property
    def uncertainty(self) -> np.ndarray:
        if self.std is not None:
            return self.std
        assert self.proba is not None
        p = np.clip(self.proba, 1e-12, 1.0)
        return -(p * np.log(p)).sum(axis=1)


def model_score_compounds(
    *,
    model: MLModel,
    compound_ids: Sequence[int] | None = None,
    queryset: QuerySet[Compound] | None = None,
    with_members: bool = False,
    with_fingerprints: bool = True,
    with_features: bool = False,
    chunk_size: int = POOL_CHUNK,
    progress: ProgressFn = _noop,
) -> PoolScores:
    """Score registered compounds from their stored fingerprints/features, in chunks.

    `with_features` keeps the rows as the members see them, with the kernel's column
    weights (4 bytes x columns a compound: for design strategies on a sampled pool, not for
    a 1M pool)."""
    art = model_load(model=model)
    spec = art.feature_spec
    train_fps = model_training_fingerprints(art=art)
    if queryset is None:
        queryset = Compound.objects.filter(id__in=list(compound_ids or []))
    # The ids give the total too: a count() of a filtered pool costs as much as reading them.
    pool_ids = pool_id_array(queryset)
    total = max(pool_ids.size, 1)
    parts: list[dict[str, np.ndarray]] = []
    done = 0

    # X buffers the predict loop is done with, for the next chunks to reuse (not when the
    # caller keeps X): two are in use at a time, one predicted and one being built.
    free: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
    buffer_rows = min(chunk_size, pool_ids.size)

    # The prior's columns stored with the compounds' features, when its boosters are this
    # model's: 0.33 CPU-s per 50,000 rows the ensemble then does not spend (BENCHMARKS.md).
    prior = _prior_read(art.ensemble, spec)

    def prepared() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
        for ids, packed, stored, prior_columns in pool_chunks(
            pool_ids=pool_ids, spec=spec, chunk_size=chunk_size, prior=prior
        ):
            buffer = None
            if not with_features:
                try:
                    buffer = free.get_nowait()
                except queue.Empty:
                    buffer = np.empty((buffer_rows, spec.n_features), dtype=np.float32)
            X = features.build_matrix(spec, packed, stored, out=buffer)
            yield ids, packed, X, applicability.applicability_distance(packed, train_fps), buffer, prior_columns

    chunks = prepared()
    if total > chunk_size and connection.vendor == "postgresql" and not connection.in_atomic_block:
        # Read the next chunk, build its X and its applicability on a second thread while
        # this one is predicted: the driver, numpy, the compiled applicability kernel and
        # XGBoost all release the GIL, so the stages overlap (one chunk more in memory).
        chunks = _prefetched(chunks)
    for ids, packed, X, distance, buffer, prior_columns in chunks:
        pred = art.ensemble.predict(X, return_members=with_members, prior_columns=prior_columns)
        if buffer is not None:
            free.put(buffer)  # nothing refers to X after the prediction
        part: dict[str, Any] = {"ids": ids, "applicability": distance}
        if with_features:
            part["features"] = art.ensemble.member_input(X, prior_columns=prior_columns)
        if with_fingerprints:
            # 256 bytes a compound: kept only when a batch mode or the map needs them.
            part["fingerprints"] = packed
        if isinstance(pred, RegressionPrediction):
            part["mean"], part["std"] = pred.mean, pred.std
            if with_members and pred.members is not None:
                part["members"] = pred.members
        elif isinstance(pred, ClassificationPrediction):
            part["proba"] = pred.proba
            if with_members and pred.member_proba is not None:
                part["member_proba"] = pred.member_proba
        parts.append(part)
        done += len(ids)
        progress("scoring pool", min(99, int(100 * done / total)))

    def cat(key: str, axis: int = 0) -> np.ndarray | None:
        arrays = [p[key] for p in parts if key in p]
        return np.concatenate(arrays, axis=axis) if arrays else None

    empty_ids = np.zeros(0, dtype=np.int64)
    pool_features = cat("features") if with_features else None
    return PoolScores(
        ids=cat("ids") if parts else empty_ids,
        mean=cat("mean"),
        std=cat("std"),
        proba=cat("proba"),
        member_proba=cat("member_proba", axis=1),
        applicability=cat("applicability") if parts else np.zeros(0, dtype=np.float32),
        fingerprints=cat("fingerprints") if parts and with_fingerprints else (
            np.zeros((0, chemistry.FP_BYTES), dtype=np.uint8) if with_fingerprints else None
        ),
        features=pool_features,
        feature_weights=None if pool_features is None else art.ensemble.kernel_column_weights(pool_features.shape[1]),
        members=cat("members", axis=1),
    )


def _prefetched(iterator: Iterator[Any]) -> Iterator[Any]:
    """Run `iterator` one item ahead on a worker thread (with its own DB connection)."""
    from concurrent.futures import ThreadPoolExecutor

    def step() -> Any:
        try:
            return next(iterator)
        except StopIteration:
            return _DONE

    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(step)
        while (item := future.result()) is not _DONE:
            future = pool.submit(step)
            yield item
        # The lambda runs on the worker thread, so it closes that thread's connection.
        pool.submit(lambda: connection.close()).result()


_DONE = object()


@dataclass
class PredictionRow:
    input: str
    compound_id: int | None
    prediction: float | None
    uncertainty: float | None
    applicability_distance: float | None
    probabilities: list[float] | None
    predicted_class: str | None
    error: str | None = None
    # Regression: the spread calibrated on out-of-bag errors (`mlmodels.selectors.predictive_std`),
    # the std of the error to expect; ± 1.96 x it is the 95 % interval.
    predictive_std: float | None = None


def model_predict(
    *, model: MLModel, smiles: Sequence[str] | None = None, compound_ids: Sequence[int] | None = None
) -> list[PredictionRow]:
    """Predictions for posted SMILES or registered compounds; a bad SMILES is a row error."""
    if model.status == ModelStatus.FAILED:
        raise Conflict(f"{model} failed: {model.error or 'retrain it'}")
    rows: list[PredictionRow] = []
    if compound_ids:
        scores = model_score_compounds(model=model, compound_ids=list(compound_ids))
        by_id = {int(i): k for k, i in enumerate(scores.ids)}
        for cid in compound_ids:
            k = by_id.get(int(cid))
            if k is None:
                rows.append(PredictionRow(str(cid), int(cid), None, None, None, None, None, "no such compound"))
                continue
            rows.append(_row(str(cid), int(cid), scores, k, model))
        return rows
    art = model_load(model=model)
    spec = art.feature_spec
    valid: list[tuple[int, Chem.Mol]] = []
    rows = [PredictionRow(s, None, None, None, None, None, None) for s in smiles or []]
    for i, s in enumerate(smiles or []):
        try:
            valid.append((i, chemistry.standardize(chemistry.parse_smiles(s))))
        except chemistry.ChemistryError as exc:
            rows[i].error = str(exc)
    if valid:
        mols = [m for _, m in valid]
        packed = features.packed_fingerprints(mols)
        X = features.featurize_mols(mols, spec)
        pred = art.ensemble.predict(X, return_members=False)
        dist = applicability.applicability_distance(packed, model_training_fingerprints(art=art))
        scores = PoolScores(
            ids=np.zeros(len(valid), dtype=np.int64),
            mean=getattr(pred, "mean", None),
            std=getattr(pred, "std", None) if isinstance(pred, RegressionPrediction) else None,
            proba=getattr(pred, "proba", None),
            member_proba=None,
            applicability=dist,
            fingerprints=packed,
        )
        for k, (i, _) in enumerate(valid):
            rows[i] = _row(rows[i].input, None, scores, k, model)
    return rows


def _row(inp: str, cid: int | None, scores: PoolScores, k: int, model: MLModel) -> PredictionRow:
    assay = model.assay
    proba = [round(float(p), 6) for p in scores.proba[k]] if scores.proba is not None else None
    pred = float(scores.prediction[k])
    uncertainty = float(scores.uncertainty[k])
    return PredictionRow(
        input=inp,
        compound_id=cid,
        prediction=pred,
        uncertainty=uncertainty,
        applicability_distance=float(scores.applicability[k]),
        probabilities=proba,
        predicted_class=assay.format_value(pred) if assay.is_classification else None,
        predictive_std=None if assay.is_classification else predictive_std(model=model, std=uncertainty),
    )


def model_explain(*, model: MLModel, compound: Compound, class_index: int | None = None) -> Any:
    """SHAP atom weights and the coloured structure for one compound (XGBoost models)."""
    from mlmodels.ml import explain

    if model.algorithm != "xgboost":
        raise Conflict("Atom maps are available for XGBoost models only.")
    art = model_load(model=model)
    return explain.explain_smiles(art.ensemble, art.feature_spec, compound.canonical_smiles, class_index=class_index)


# --- Feature backfill (chunked, shared by any number of workers) ----------------

BACKFILL_CHUNK = 20_000


def compound_features_backfill_range(*, spec: features.FeatureSpec, id_from: int, id_to: int) -> int:
    """Store the features `spec` needs, and the prior's columns with them, for id_from <= id < id_to.

    A worker may train the prior's boosters here (once per machine, ≈ 1 min); storing
    features elsewhere only uses boosters already cached (`compound_features_ensure`).
    """
    prior = physchem.load_prior() if spec.n_stored and physchem.prior_default(spec) else None
    in_range = Compound.objects.filter(id__gte=id_from, id__lt=id_to)
    ids = list(in_range.exclude(feature_set=spec.name).values_list("id", flat=True))
    done = 0
    for start in range(0, len(ids), 2000):
        done += compound_features_ensure(spec=spec, compound_ids=ids[start : start + 2000])
    if prior is not None:
        # Vectors stored before the prior's columns were (or under other boosters).
        stale = list(in_range.filter(feature_set=spec.name).exclude(prior_key=prior.key).values_list("id", flat=True))
        for start in range(0, len(stale), 2000):
            done += compound_prior_ensure(spec=spec, compound_ids=stale[start : start + 2000], prior=prior)
    return done


def compound_features_backfill_enqueue(*, spec: features.FeatureSpec | None = None, chunk: int = BACKFILL_CHUNK) -> int:
    """Split the registry into id ranges and enqueue one job per range; returns the job count."""
    from config.jobs import enqueue_background
    from mlmodels import jobs

    spec = spec or features.DEFAULT_SPEC
    ranges = compound_features_backfill_ranges(spec=spec, chunk=chunk)
    for start, stop in ranges:
        enqueue_background(jobs.compute_features_range, spec.to_dict(), start, stop)
    return len(ranges)


def compound_features_backfill_ranges(*, spec: features.FeatureSpec, chunk: int = BACKFILL_CHUNK) -> list[tuple[int, int]]:
    """[start, stop) id ranges of `chunk` ids covering every compound whose stored features
    or prior columns are missing or stale (empty when none are)."""
    from django.db.models import Max, Min

    if spec.n_stored == 0:
        return []
    stale = ~Q(feature_set=spec.name)
    if physchem.prior_default(spec):
        # Stored vectors without the prior's columns, or with other boosters' (a library
        # upgrade): the key is known once the boosters are cached; before, none are stored.
        prior = physchem.load_prior_if_cached()
        stale |= ~Q(prior_key=prior.key) if prior is not None else Q(prior_key="")
    bounds = Compound.objects.filter(stale).aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return []
    return [(start, start + chunk) for start in range(bounds["lo"], bounds["hi"] + 1, chunk)]


def model_require_active(model: MLModel, *, hint: str) -> None:
    """Refuse work on a replaced version with a 409 that names the lineage's active one
    (`active_model`), so a client holding an old id learns where to go instead of getting
    an empty answer."""
    if model.status == ModelStatus.ACTIVE:
        return
    active = lineage_active_version(model)
    raise Conflict(
        f"{model} is {model.status}; {hint}" + (f" (model id {active.pk}, v{active.version})" if active else ""),
        extra={"field": "model", "active_model": active.pk if active else None},
    )
