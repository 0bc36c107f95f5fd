"""Select compounds for labeling: build the pool, score it, rank it, queue the batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, QuerySet

from compounds import services as compound_services
from compounds.models import Compound, Dataset, Measurement
from compounds.selectors import compound_ids_containing
from config.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from config.roles import LEAD, has_role
from cycles import strategies
from cycles.models import ActiveLearningCycle, CycleStatus
from labeling import services as queue_services
from labeling.models import OPEN_STATUSES, AuditAction, LabelQueueItem
from mlmodels import services as model_services
from mlmodels.models import MLModel, ModelStatus
from mlmodels.selectors import metrics_headline

MAX_BATCH_SIZE = 5000
# Pools larger than this are scored in chunks shared with CHEMLOOP_SCORING_HELPERS RQ jobs.
DISTRIBUTE_ABOVE = settings.CHEMLOOP_DISTRIBUTE_ABOVE
MAX_POOL_LIST = 100_000
# Strategies that need the pool's feature matrix (variance_reduction) see a seeded random
# sample of this many pool compounds (config/settings/base.py says why).
FEATURE_POOL_CAP = settings.CHEMLOOP_FEATURE_POOL_CAP


@dataclass(frozen=True)
class PoolSpec:
    """Which compounds to consider: everything unlabeled, a dataset, or an explicit list."""

    kind: str = "all"  # "all" | "dataset" | "compounds" | "smiles"
    dataset_id: int | None = None
    compound_ids: tuple[int, ...] = ()
    smiles: tuple[str, ...] = ()
    # Any kind narrowed to the compounds that contain this SMARTS (or SMILES): a series.
    substructure: str = ""

    def describe(self) -> str:
        if self.kind == "dataset":
            text = f"dataset {self.dataset_id}"
        elif self.kind == "compounds":
            text = f"{len(self.compound_ids)} listed compounds"
        elif self.kind == "smiles":
            text = f"{len(self.smiles)} pasted SMILES"
        else:
            text = "all unlabeled compounds"
        return f"{text} containing {self.substructure}" if self.substructure else text


@dataclass
class Candidate:
    compound: Compound
    rank: int
    priority_score: float
    prediction: float | None
    uncertainty: float | None
    applicability_distance: float | None
    probabilities: list[float] | None
    score_components: dict[str, Any]
    # False for a pasted structure a preview scored but did not keep (compound.pk is None).
    registered: bool = True


@dataclass
class SelectionResult:
    model: MLModel
    strategy: str
    params: dict[str, Any]
    pool_size: int
    candidates: list[Candidate]
    cycle: ActiveLearningCycle | None = None
    pool_errors: list[dict[str, Any]] = field(default_factory=list)
    # For the chemical-space map: packed fingerprints of the pool and the chosen rows.
    pool_fingerprints: np.ndarray | None = None
    chosen_indices: np.ndarray | None = None


def strategy_catalog() -> list[dict[str, Any]]:
    """Strategies with their goal, tasks and parameters, for forms and the API."""
    return [
        {
            "name": info.name,
            "goal": info.goal,
            "tasks": list(info.tasks),
            "description": info.description,
            "params": {**strategies.COMMON_PARAMS, **dict(info.params)},
        }
        for info in strategies.STRATEGIES.values()
    ]


def pool_queryset(*, model: MLModel, pool: PoolSpec, user: Any = None) -> tuple[QuerySet[Compound], list[dict[str, Any]]]:
    """The eligible pool: validation compounds, measured compounds and compounds already
    open for this model lineage are always excluded."""
    errors: list[dict[str, Any]] = []
    listed: dict[int, tuple[int, str]] = {}  # compound id → (row, input) of an explicit list
    qs = Compound.objects.all()
    if pool.kind == "dataset":
        if not pool.dataset_id:
            raise ValidationFailed("choose a dataset", extra={"field": "dataset_id"})
        if not Dataset.objects.filter(pk=pool.dataset_id).exists():
            raise ValidationFailed(f"no dataset with id {pool.dataset_id}", extra={"field": "dataset_id"})
        qs = qs.filter(datasets__id=pool.dataset_id)
    elif pool.kind == "compounds":
        if not pool.compound_ids:
            raise ValidationFailed("the compound list is empty", extra={"field": "compound_ids"})
        if len(pool.compound_ids) > MAX_POOL_LIST:
            raise ValidationFailed(f"at most {MAX_POOL_LIST} compounds per list", extra={"field": "compound_ids"})
        for row, pk in enumerate(pool.compound_ids, start=1):
            listed.setdefault(int(pk), (row, str(pk)))
        qs = qs.filter(id__in=list(listed))
    elif pool.kind == "smiles":
        ids, _new, errors = _register_pasted(pool.smiles)
        listed = _pasted_rows(pool.smiles, ids, errors)
        qs = qs.filter(id__in=ids)
    elif pool.kind != "all":
        raise ValidationFailed("pool must be all, dataset, compounds or smiles", extra={"field": "pool"})
    measured = Measurement.objects.filter(assay_id=model.assay_id, compound_id=OuterRef("pk"))
    open_items = LabelQueueItem.objects.filter(
        compound_id=OuterRef("pk"), model__name=model.name, status__in=OPEN_STATUSES
    )
    qs = (
        qs.exclude(validation_sets=model.validation_set_id)
        .exclude(Exists(measured))
        .exclude(Exists(open_items))
        .distinct()
    )
    if listed:
        errors = sorted(errors + _left_out(model=model, listed=listed, eligible=set(qs.values_list("id", flat=True))),
                        key=lambda e: e["row"])
    if pool.substructure:
        qs = _containing(qs, pool.substructure)
    return qs, errors


def _pasted_rows(smiles: tuple[str, ...], ids: list[int], errors: list[dict[str, Any]]) -> dict[int, tuple[int, str]]:
    """Compound id → (line, text) of the pasted lines that registered (first line wins)."""
    bad = {e["row"] for e in errors}
    rows = [i for i in range(1, len(smiles) + 1) if i not in bad]
    out: dict[int, tuple[int, str]] = {}
    for row, pk in zip(rows, ids, strict=True):
        out.setdefault(pk, (row, smiles[row - 1][:200]))
    return out


def _left_out(*, model: MLModel, listed: dict[int, tuple[int, str]], eligible: set[int]) -> list[dict[str, Any]]:
    """Why each compound of an explicit list is not in the pool, so nothing vanishes silently."""
    missing = [pk for pk in listed if pk not in eligible]
    if not missing:
        return []
    known = set(Compound.objects.filter(id__in=missing).values_list("id", flat=True))
    validation = set(
        Compound.objects.filter(id__in=missing, validation_sets=model.validation_set_id).values_list("id", flat=True)
    )
    measured = set(
        Measurement.objects.filter(assay_id=model.assay_id, compound_id__in=missing).values_list("compound_id", flat=True)
    )
    queued = set(
        LabelQueueItem.objects.filter(
            compound_id__in=missing, model__name=model.name, status__in=OPEN_STATUSES
        ).values_list("compound_id", flat=True)
    )
    out = []
    for pk in missing:
        row, text = listed[pk]
        if pk not in known:
            reason = "no compound with this id"
        elif pk in validation:
            reason = "in the validation set (never labeled through the queue)"
        elif pk in measured:
            reason = f"already measured for {model.assay.name}"
        elif pk in queued:
            reason = "already in the label queue of this model"
        else:
            reason = "not eligible"
        out.append({"row": row, "input": text, "reason": reason, "compound_id": pk if pk in known else None})
    return sorted(out, key=lambda e: e["row"])


def _register_pasted(smiles: tuple[str, ...]) -> tuple[list[int], set[int], list[dict[str, Any]]]:
    """Pasted SMILES registered as compounds: their ids, the ids that are new, and the
    rows that could not be read."""
    if not smiles:
        raise ValidationFailed("the SMILES list is empty", extra={"field": "smiles"})
    if len(smiles) > MAX_POOL_LIST:
        raise ValidationFailed(f"at most {MAX_POOL_LIST} SMILES per list", extra={"field": "smiles"})
    ids: list[int] = []
    new: set[int] = set()
    errors: list[dict[str, Any]] = []
    for i, s in enumerate(smiles, start=1):
        try:
            compound, created = compound_services.compound_register(smiles=s)
        except ValidationFailed as exc:
            errors.append({"row": i, "input": s[:200], "reason": exc.message})
            continue
        ids.append(compound.pk)
        if created:
            new.add(compound.pk)
    return ids, new, errors


def _preview_pasted(*, pool: PoolSpec, **kwargs: Any) -> SelectionResult:
    """A preview of pasted SMILES writes nothing: the structures are registered so the
    usual scoring can read them, inside a transaction that is rolled back afterwards.
    Candidates that were not in the registry come back with `registered=False` and no id."""
    with transaction.atomic():
        ids, new, errors = _register_pasted(pool.smiles)
        if not ids:
            raise ValidationFailed(
                f"none of the {len(pool.smiles)} pasted SMILES is a valid structure",
                extra={"field": "smiles", "pool_errors": errors},
            )
        listed = PoolSpec(kind="compounds", compound_ids=tuple(ids), substructure=pool.substructure)
        # Local scoring: helper processes would not see the uncommitted structures.
        result = cycle_select(pool=listed, preview=True, distributed=False, **kwargs)
        transaction.set_rollback(True)
    # The left-out rows of the id list are pasted lines: say which, with their text.
    rows = _pasted_rows(pool.smiles, ids, errors)
    for error in result.pool_errors:
        pk = error.get("compound_id")
        if pk in rows:
            error["row"], error["input"] = rows[pk]
            error["compound_id"] = None if pk in new else pk
    result.pool_errors = sorted(errors + result.pool_errors, key=lambda e: e["row"])
    for candidate in result.candidates:
        if candidate.compound.pk in new:
            candidate.compound.pk = None
            candidate.registered = False
    return result


def _containing(qs: QuerySet[Compound], pattern: str) -> QuerySet[Compound]:
    """The eligible pool narrowed to a substructure. Compounds the stored screen cannot
    rule out are parsed (~50 µs each), so their number is bounded like a structure
    search's; a pool that would need more is refused, not cut."""
    # Also a compound list's limit: distributed scoring hands the matches to helpers as one.
    limit = min(settings.CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT, MAX_POOL_LIST)
    ids, complete = compound_ids_containing(pattern=pattern, queryset=qs, parse_limit=limit)
    if not complete or len(ids) > MAX_POOL_LIST:
        raise ValidationFailed(
            f"this pool has {qs.count():,} compounds, and matching the substructure would parse more than "
            f"{limit:,} of them (CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT; the stored screen rules out the rest, once "
            "its background job has run): choose a dataset or a compound list",
            extra={"field": "substructure"},
        )
    return Compound.objects.filter(id__in=ids)


def _best_observed(model: MLModel) -> float | None:
    from django.db.models import Max as DMax
    from django.db.models import Min as DMin

    agg = Measurement.objects.filter(assay_id=model.assay_id).aggregate(lo=DMin("value"), hi=DMax("value"))
    return agg["lo"] if model.assay.direction == "minimize" else agg["hi"]


def selection_check(*, model: MLModel, user: Any, strategy: str, batch_size: Any) -> strategies.StrategyInfo:
    """The checks a selection passes before any scoring: role, active version, batch size,
    known strategy (also made when a background selection is queued, so it refuses at once)."""
    if not has_role(user, LEAD):
        raise PermissionDenied("Only leads can select samples.")
    model_services.model_require_active(model, hint="select with the lineage's active version")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValidationFailed(f"batch size must be between 1 and {MAX_BATCH_SIZE}", extra={"field": "batch_size"})
    info = strategies.STRATEGIES.get(strategy)
    if info is None:
        raise ValidationFailed(
            f"unknown strategy {strategy!r}; choose from {', '.join(strategies.STRATEGIES)}", extra={"field": "strategy"}
        )
    return info


def cycle_select(
    *,
    model: MLModel,
    user: Any,
    strategy: str = "uncertainty",
    batch_size: int = 50,
    params: dict[str, Any] | None = None,
    pool: PoolSpec | None = None,
    random_state: int | None = None,
    preview: bool = False,
    with_pool_fingerprints: bool = False,
    distributed: bool | None = None,
    helpers: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> SelectionResult:
    """Score the pool with the model, rank it with the strategy, and (unless previewing)
    open a new cycle whose queue holds the batch — all in one transaction.

    `progress(stage, percent)` hears how far the scoring is (the background job's bar).
    `helpers`: RQ jobs that share a big pool's scoring (default `CHEMLOOP_SCORING_HELPERS`)."""
    info = selection_check(model=model, user=user, strategy=strategy, batch_size=batch_size)
    progress = progress or (lambda stage, percent: None)
    helpers = settings.CHEMLOOP_SCORING_HELPERS if helpers is None else helpers
    pool = pool or PoolSpec()
    if preview and pool.kind == "smiles":
        return _preview_pasted(
            pool=pool, model=model, user=user, strategy=strategy, batch_size=batch_size, params=params,
            random_state=random_state, with_pool_fingerprints=with_pool_fingerprints, helpers=helpers,
        )
    pool_description = pool.describe()
    qs, pool_errors = pool_queryset(model=model, pool=pool, user=user)
    if pool.kind == "smiles" or pool.substructure:
        # Registered / matched above: helpers rebuild the pool from ids, not from text.
        pool = PoolSpec(kind="compounds", compound_ids=tuple(qs.values_list("id", flat=True)))
    task = "classification" if model.assay.is_classification else "regression"
    required = set(info.requires.get(task, ()))
    batch_modes = {(params or {}).get("batch")}
    warmup = (params or {}).get("warmup")
    warm_over = isinstance(warmup, dict) and _warmup_over(model, warmup)
    if warm_over:
        # The schedule has handed over for good (labels only grow): the warm-up's needs
        # (e.g. the design's feature matrix, which caps the pool at a sample) no longer apply.
        required.add("labeled_fingerprints")
    elif isinstance(warmup, dict):
        # Load what either stage needs; strategies.select validates the schedule and
        # counts the labeled compounds on the training fingerprints.
        warm_info = strategies.STRATEGIES.get(warmup.get("strategy"))  # type: ignore[arg-type]
        if warm_info is not None:
            required |= set(warm_info.requires.get(task, ()))
        if isinstance(warmup.get("params"), dict):
            batch_modes.add(warmup["params"].get("batch"))
        required.add("labeled_fingerprints")
    ranked_batch = "ranked_batch" in batch_modes
    warm_active = isinstance(warmup, dict) and not warm_over
    ensemble_design = _wants_ensemble_design(params, warm_active=warm_active)
    needs_members = (
        strategy == "bald"
        or (isinstance(warmup, dict) and warmup.get("strategy") == "bald")
        or ensemble_design
    )
    # Fingerprints of the whole pool only when a strategy, batch mode or the map uses them (256 B a compound).
    needs_fps = (
        with_pool_fingerprints
        or bool(batch_modes & {"diverse", "ranked_batch"})
        or "fingerprints" in required
    )
    needs_features = "features" in required
    pool_sampled: str | None = None
    if distributed is None and (not needs_features or ensemble_design):
        # Big pools on RQ are shared with the configured helpers (workers on other
        # machines); small ones, and every pool when there are none, are scored right here.
        distributed = helpers > 0 and not settings.JOBS_IN_PROCESS and qs.count() > DISTRIBUTE_ABOVE
    if needs_features:
        if ensemble_design:
            qs, pool_sampled = _uncertain_pool(
                model=model, qs=qs, pool=pool, distributed=bool(distributed), helpers=helpers, progress=progress
            )
        else:
            qs, pool_sampled = _feature_pool(qs, random_state)
        # The design's rows (at most FEATURE_POOL_CAP) are read right here.
        distributed = False
    if distributed:
        from cycles.services.scoring import pool_score_distributed

        scores = pool_score_distributed(
            model=model, pool=pool, queryset=qs, with_members=needs_members, with_fingerprints=needs_fps,
            helpers=helpers,
        )
    else:
        scores = model_services.model_score_compounds(
            model=model,
            queryset=qs,
            with_members=needs_members,
            with_fingerprints=needs_fps,
            with_features=needs_features,
            progress=lambda stage, percent: progress(stage, int(percent * 0.9)),
        )
    progress("ranking the pool and opening the cycle", 92)
    if scores.ids.size == 0:
        raise ValidationFailed(
            "The pool has no eligible compounds (all are labeled, queued or in the validation set).",
            extra={"field": "pool", "pool_errors": pool_errors},
        )
    labeled_fps = labeled_values = labeled_features = target_features = target_members = None
    if ranked_batch or "labeled_fingerprints" in required:
        labeled_fps = model_services.model_training_fingerprints(art=model_services.model_load(model=model))
    if "labeled_values" in required:
        labeled_values = _training_values(model=model)
    if needs_features:
        labeled_features = model_services.model_training_features(art=model_services.model_load(model=model))
        if _wants_validation_target(params):
            target_features, target_members = model_services.model_validation_features(
                model=model, with_members=needs_members and task == "regression"
            )
    try:
        outputs = model_outputs(
            model=model,
            scores=scores,
            labeled_fingerprints=labeled_fps,
            labeled_values=labeled_values,
            labeled_features=labeled_features,
            target_features=target_features,
            target_members=target_members,
            best_observed=_best_observed(model) if not model.assay.is_classification else None,
        )
        selection = strategies.select(strategy, outputs, batch_size, params=params, random_state=random_state)
    except strategies.StrategyError as exc:
        raise ValidationFailed(exc.message, extra={"field": exc.param}) from exc

    chosen = selection.indices
    compounds = Compound.objects.in_bulk([int(scores.ids[i]) for i in chosen])
    candidates = []
    for rank, (i, comps) in enumerate(zip(chosen, selection.components, strict=True), start=1):
        candidates.append(
            Candidate(
                compound=compounds[int(scores.ids[i])],
                rank=rank,
                priority_score=float(selection.scores[i]),
                prediction=float(scores.prediction[i]),
                uncertainty=float(scores.uncertainty[i]),
                applicability_distance=float(scores.applicability[i]),
                probabilities=[float(p) for p in scores.proba[i]] if scores.proba is not None else None,
                score_components={k: _jsonable(v) for k, v in comps.items()},
            )
        )
    used_params = {k: _jsonable(v) for k, v in selection.params.items()}
    if pool_sampled:
        # The cycle records that the design saw a sample, how big, and how it was drawn.
        used_params["pool_sample"] = FEATURE_POOL_CAP
        used_params["pool_sample_by"] = pool_sampled
    result = SelectionResult(
        model=model,
        strategy=strategy,
        params=used_params,
        pool_size=int(scores.ids.size),
        candidates=candidates,
        pool_errors=pool_errors,
        pool_fingerprints=scores.fingerprints if with_pool_fingerprints else None,
        chosen_indices=chosen if with_pool_fingerprints else None,
    )
    if preview:
        return result
    if not candidates:
        # An empty cycle could never be labeled nor retrained: refuse it instead.
        raise ValidationFailed(
            f"{strategy} picked no compound from the {result.pool_size:,} eligible ones (a threshold such as "
            "min_uncertainty filtered them all out); preview to adjust, nothing was queued",
            extra={"field": "params", "pool_errors": pool_errors},
        )
    result.cycle = _cycle_open(
        model=model, user=user, result=result, batch_size=batch_size, pool_description=pool_description
    )
    return result


def _warmup_over(model: MLModel, warmup: dict[str, Any]) -> bool:
    """True when the model was trained on at least `until_labeled` compounds, counted as
    strategies.select counts them (the training fingerprints); a malformed schedule is
    left to strategies.select to refuse."""
    until = warmup.get("until_labeled")
    if isinstance(until, bool) or not isinstance(until, int):
        return False
    art = model_services.model_load(model=model)
    return int(model_services.model_training_fingerprints(art=art).shape[0]) >= until


def _wants_validation_target(params: dict[str, Any] | None) -> bool:
    """True when the strategy or its warm-up aims a design at the validation compounds
    (any `target` but the pool: strategies.select refuses a malformed one)."""
    params = params or {}
    warmup = params.get("warmup")
    warm_params = warmup.get("params") if isinstance(warmup, dict) else None
    return any(
        isinstance(p, dict) and p.get("target", "pool") != "pool" for p in (params, warm_params)
    )


def _wants_ensemble_design(params: dict[str, Any] | None, *, warm_active: bool) -> bool:
    """True when the stage that picks this batch (a warm-up still in force, else the
    strategy) is a design that uses the members' predictions (ensemble_weight > 0, or
    uncertainty_power > 0 aimed at the validation compounds): the pool and those compounds
    are then scored with their members."""
    params = params or {}
    warmup = params.get("warmup")
    p = (warmup.get("params") if isinstance(warmup, dict) else None) if warm_active else params
    if not isinstance(p, dict):
        return False

    def positive(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and value > 0

    return positive(p.get("ensemble_weight")) or (
        positive(p.get("uncertainty_power")) and p.get("target", "pool") != "pool"
    )


def _feature_pool(qs: QuerySet[Compound], random_state: int | None) -> tuple[QuerySet[Compound], str | None]:
    """The pool, or a seeded random sample of FEATURE_POOL_CAP of it ("random" when sampled)."""
    ids = model_services.pool_id_array(qs)
    if ids.size <= FEATURE_POOL_CAP:
        return qs, None
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(ids, FEATURE_POOL_CAP, replace=False))
    return Compound.objects.filter(id__in=sample.tolist()), "random"


def _uncertain_pool(
    *,
    model: MLModel,
    qs: QuerySet[Compound],
    pool: PoolSpec,
    distributed: bool,
    helpers: int,
    progress: Callable[[str, int], None],
) -> tuple[QuerySet[Compound], str | None]:
    """The pool, or its FEATURE_POOL_CAP most uncertain compounds ("uncertainty" when cut).

    A design that counts the members' predictions depends on the fit anyway, so on a big
    pool it chooses among the compounds the ensemble is least sure of (the whole pool is
    scored once, without features), not among a random sample that would miss most of them."""
    def step(stage: str, percent: int) -> None:
        progress("scoring pool for the design's candidates", int(percent * 0.8))

    if distributed:
        from cycles.services.scoring import pool_score_distributed

        scores = pool_score_distributed(
            model=model, pool=pool, queryset=qs, with_fingerprints=False, helpers=helpers, progress=step
        )
    else:
        scores = model_services.model_score_compounds(model=model, queryset=qs, with_fingerprints=False, progress=step)
    if scores.ids.size <= FEATURE_POOL_CAP:
        # Small enough to design over whole (the caller scores it again with its features:
        # cheap at this size, and a 1M pool then reads its ids once, not twice).
        return qs, None
    keep = strategies.top_k(scores.uncertainty, FEATURE_POOL_CAP)
    return Compound.objects.filter(id__in=np.sort(scores.ids[keep]).tolist()), "uncertainty"


def _training_values(*, model: MLModel) -> np.ndarray:
    """The measured values the model was trained on, in its artifact's training order
    (the order of `model_training_fingerprints`), replicates averaged as in training."""
    training_ids = model_services.model_load(model=model).training_ids
    ids, y = model_services.assay_training_data(assay=model.assay, include_ids=set(training_ids))
    by_id = dict(zip(ids.tolist(), y.tolist(), strict=True))
    return np.array([by_id[i] for i in training_ids if i in by_id], dtype=float)


def model_outputs(
    *,
    model: MLModel,
    scores: model_services.PoolScores,
    labeled_fingerprints: np.ndarray | None = None,
    labeled_values: np.ndarray | None = None,
    labeled_features: np.ndarray | None = None,
    target_features: np.ndarray | None = None,
    target_members: np.ndarray | None = None,
    best_observed: float | None = None,
) -> strategies.ModelOutputs:
    """What the strategies see of a model's scores over a pool."""
    return strategies.ModelOutputs(
        task="classification" if model.assay.is_classification else "regression",
        mean=scores.mean,
        std=scores.std,
        proba=scores.proba,
        member_proba=scores.member_proba,
        members=scores.members,
        applicability=scores.applicability,
        fingerprints=scores.fingerprints,
        labeled_fingerprints=labeled_fingerprints,
        labeled_values=labeled_values,
        features=scores.features,
        labeled_features=labeled_features,
        feature_weights=scores.feature_weights,
        target_features=target_features,
        target_members=target_members,
        best_observed=best_observed,
        direction=model.assay.direction,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@transaction.atomic
def _cycle_open(
    *, model: MLModel, user: Any, result: SelectionResult, batch_size: int, pool_description: str
) -> ActiveLearningCycle:
    # Lock the model row: concurrent selections for one model get consecutive cycle numbers.
    locked = MLModel.objects.select_for_update().get(pk=model.pk)
    if locked.status != ModelStatus.ACTIVE:
        raise Conflict(f"{locked} stopped being active while selecting; select again.")
    cycle = ActiveLearningCycle.objects.create(
        model=model,
        cycle_number=next_cycle_number(model.name),
        selection_strategy=result.strategy,
        strategy_params=result.params,
        batch_size=batch_size,
        pool_description=pool_description,
        status=CycleStatus.LABELING,
        metrics_before=metrics_headline(model.metrics),
        items_selected=len(result.candidates),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    queue_services.queue_items_add(
        model=model,
        cycle=cycle,
        selection_batch=cycle.cycle_number,
        strategy=result.strategy,
        entries=[
            queue_services.QueueEntry(
                compound_id=c.compound.pk,
                priority_score=c.priority_score,
                prediction=c.prediction,
                uncertainty=c.uncertainty,
                applicability_distance=c.applicability_distance,
                probabilities=c.probabilities,
                # The version that picked it: a retrain re-scores open items (prediction,
                # priority) but the reasons stay those of this selection.
                score_components={**c.score_components, "model_version": model.version},
            )
            for c in result.candidates
        ],
    )
    queue_services.audit(AuditAction.SELECT, actor=user, cycle=cycle, strategy=result.strategy, n=len(result.candidates))
    return cycle


def cycle_get(*, cycle_id: Any) -> ActiveLearningCycle:
    import uuid

    try:
        pk = cycle_id if isinstance(cycle_id, uuid.UUID) else uuid.UUID(str(cycle_id))
        return ActiveLearningCycle.objects.select_related("model__assay", "result_model", "job").get(pk=pk)
    except (ActiveLearningCycle.DoesNotExist, ValueError, TypeError, AttributeError) as exc:
        raise NotFound("No such cycle.") from exc


def next_cycle_number(lineage: str) -> int:
    """The next cycle number of a model lineage; the caller holds a lock on its model rows,
    so two cycles never get one number."""
    return (ActiveLearningCycle.objects.filter(model__name=lineage).aggregate(n=Max("cycle_number"))["n"] or 0) + 1
