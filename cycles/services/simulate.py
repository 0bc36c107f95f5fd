"""Replay a data set with known labels through the product's own services.

The file's values are imported as a "truth" assay that plays the scientist: each
simulated cycle selects with `cycle_select`, labels with `label_submit` (value
looked up in the truth assay) and retrains with the real retrain job body. Two
modes:

- improve: learning curve of the validation metric vs number of labels
  (validation = the file's `split == test` rows, or a seeded random fraction);
  rows with `split == check` are in neither the pool nor the validation set: every
  version is also scored on them (`check_rmse` / `check_accuracy`), a second yardstick
  that no strategy sees (e.g. to show that a design aimed at the validation compounds
  did not buy its gain there at the cost of everywhere else);
- find: MolPAL's hit-finding protocol: % of the true top-k found among all
  acquired compounds (initial random set + every batch), no validation set.
"""

from __future__ import annotations

import csv
import io
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from compounds import services as compound_services
from compounds.models import Assay, Compound, Measurement, TaskType
from cycles.models import ActiveLearningCycle, Job
from cycles.services.retraining import cycle_retrain_trigger
from cycles.services.selection import PoolSpec, cycle_select
from labeling import services as queue_services
from labeling.models import LabelQueueItem
from mlmodels import services as model_services
from mlmodels.models import MLModel, ValidationSet

LogFn = Callable[[str], None]


@dataclass
class SimulationConfig:
    path: Path
    mode: str = "improve"  # "improve" | "find"
    value_column: str = "logS"
    smiles_column: str | None = None
    task: str = TaskType.REGRESSION
    direction: str = "maximize"  # find mode: which end is a hit
    strategies: list[str] = field(default_factory=lambda: ["random", "uncertainty"])
    strategy_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    initial: float = 50  # count, or a fraction of the pool when < 1
    batch_size: float = 25  # count, or a fraction of the pool when < 1
    cycles: int = 20
    top_k: int | None = None  # find mode; default 1 % of the library
    validation_fraction: float = 0.2  # improve mode without a split column
    algorithm: str = "xgboost"
    n_members: int = 10
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    featurizer: dict[str, Any] | None = None
    # Keep each run's assay, model versions, cycles, queue items and labels afterwards
    # (for inspection); by default they are deleted when the run has been recorded.
    keep: bool = False


@dataclass
class SimulationRow:
    strategy: str
    seed: int
    step: int
    labels: int
    metric: str
    value: float | None
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _sim_user() -> Any:
    # Inactive: it can never log in, and it is never offered as an assignee.
    user, _ = get_user_model().objects.get_or_create(username="simulation", defaults={"is_active": False})
    user.groups.add(Group.objects.get_or_create(name="lead")[0])
    if hasattr(user, "_chemloop_roles"):
        del user._chemloop_roles
    return user


def _read_truth(
    config: SimulationConfig, log: LogFn
) -> tuple[Assay, list[int], list[int], list[int], dict[int, float]]:
    """Import the file once as dataset + truth assay; returns (truth assay, library ids, test
    ids, check ids, values)."""
    stem = config.path.name.split(".")[0]
    dataset_name = f"sim:{stem}"
    truth_name = f"sim-truth:{stem}:{config.value_column}"
    classes: list[str] = []
    opener = __import__("gzip").open if config.path.suffix == ".gz" else open
    with opener(config.path, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or config.value_column not in rows[0]:
        raise ValueError(f"{config.path} has no column {config.value_column!r}")
    if config.task == TaskType.CLASSIFICATION:
        classes = sorted({r[config.value_column] for r in rows})
    truth = Assay.objects.filter(name=truth_name).first()
    if truth is None:
        truth = compound_services.assay_get_or_create(name=truth_name, task_type=config.task, classes=classes)
    smiles_col = config.smiles_column or next(c for c in rows[0] if c.lower() == "smiles")
    if not Measurement.objects.filter(assay=truth).exists():
        t = time.time()
        buffer = io.StringIO()
        w = csv.writer(buffer)
        w.writerow(["smiles", "name", "value"])
        w.writerows((r[smiles_col], r.get("name", ""), r[config.value_column]) for r in rows)
        report = compound_services.compounds_import(
            stream=io.BytesIO(buffer.getvalue().encode()),
            filename="sim.csv",
            dataset_name=dataset_name,
            assay=truth,
            value_column="value",
            enqueue_enrichment=False,  # the simulated models compute what they need
        )
        log(f"imported {report.imported} compounds ({report.invalid} rejected) in {time.time() - t:.1f}s")
        if "split" in rows[0]:
            for split in ("test", "check"):
                part = io.StringIO()
                w = csv.writer(part)
                w.writerow(["smiles"])
                w.writerows([r[smiles_col]] for r in rows if r["split"] == split)
                compound_services.compounds_import(
                    stream=io.BytesIO(part.getvalue().encode()), filename="t.csv",
                    dataset_name=f"{dataset_name}:{split}",
                )
    values: dict[int, float] = {}
    for cid, value in Measurement.objects.filter(assay=truth).order_by("created_at").values_list("compound_id", "value"):
        values[cid] = value
    library = sorted(values)
    test_ids, check_ids = (
        sorted(Compound.objects.filter(datasets__name=f"{dataset_name}:{split}").values_list("id", flat=True))
        for split in ("test", "check")
    )
    return truth, library, test_ids, check_ids, values


def _count(x: float, n: int) -> int:
    return max(1, round(x * n)) if x < 1 else int(x)


def simulate(config: SimulationConfig, *, log: LogFn = print) -> list[SimulationRow]:
    truth, library, test_ids, check_ids, values = _read_truth(config, log)
    user = _sim_user()
    rows: list[SimulationRow] = []
    if config.mode == "find":
        pool = library
        k = config.top_k or max(1, round(0.01 * len(library)))
        order = sorted(library, key=lambda c: values[c], reverse=config.direction == "maximize")
        top = set(order[:k])
        validation: list[int] = []
        metric = f"top{k}_found_pct"
    else:
        if test_ids:
            validation = test_ids
        else:
            rng = np.random.default_rng(12345)
            validation = sorted(int(i) for i in rng.choice(library, size=round(config.validation_fraction * len(library)), replace=False))
        vset = set(validation) | set(check_ids)
        pool = [c for c in library if c not in vset]
        metric = "rmse" if config.task == TaskType.REGRESSION else "roc_auc"
    n_initial = _count(config.initial, len(pool))
    batch = _count(config.batch_size, len(library) if config.mode == "find" else len(pool))
    for strategy in config.strategies:
        for seed in config.seeds:
            tag = uuid.uuid4().hex[:8]
            try:
                rows.extend(
                    _run_one(
                        config=config, truth=truth, pool=pool, validation=validation,
                        check=check_ids if config.mode == "improve" else [], values=values, user=user,
                        strategy=strategy, seed=seed, n_initial=n_initial, batch=batch, metric=metric,
                        top=top if config.mode == "find" else None, log=log, tag=tag,
                    )
                )
            finally:
                if not config.keep:
                    _discard_run(f"sim:{truth.name.split(':', 1)[1]}:{strategy}:{seed}:{tag}")
    return rows


def _discard_run(assay_name: str) -> None:
    """Delete what one simulated run wrote (its assay and everything hanging off it, and
    its artifact files), so simulations leave the app's models, queue and audit trail as
    they found them. The imported truth data set stays: later runs reuse it."""
    assay = Assay.objects.filter(name=assay_name).first()
    if assay is None:
        return
    models = MLModel.objects.filter(assay=assay)
    artifacts = [Path(settings.ARTIFACT_ROOT) / m.artifact for m in models if m.artifact]
    with transaction.atomic():
        cycles = ActiveLearningCycle.objects.filter(model__assay=assay)
        job_ids = list(cycles.exclude(job=None).values_list("job_id", flat=True))
        cycles.delete()  # their audit events with them
        LabelQueueItem.objects.filter(model__assay=assay).delete()
        Job.objects.filter(pk__in=job_ids).delete()
        validation_ids = list(models.values_list("validation_set_id", flat=True))
        models.update(parent=None)
        models.delete()
        ValidationSet.objects.filter(pk__in=validation_ids).delete()
        assay.delete()  # its measurements with it
    for path in artifacts:
        path.unlink(missing_ok=True)


def _run_one(
    *,
    config: SimulationConfig,
    truth: Assay,
    pool: list[int],
    validation: list[int],
    check: list[int],
    values: dict[int, float],
    user: Any,
    strategy: str,
    seed: int,
    n_initial: int,
    batch: int,
    metric: str,
    top: set[int] | None,
    log: LogFn,
    tag: str,
) -> list[SimulationRow]:
    t0 = time.time()
    assay = Assay.objects.create(
        name=f"sim:{truth.name.split(':', 1)[1]}:{strategy}:{seed}:{tag}",
        task_type=truth.task_type,
        classes=truth.classes,
        direction=config.direction,
    )
    rng = np.random.default_rng(seed)
    initial = [int(i) for i in rng.choice(pool, size=n_initial, replace=False)]
    with transaction.atomic():
        Measurement.objects.bulk_create(
            [Measurement(compound_id=c, assay=assay, value=values[c], source="experimental") for c in initial]
            + [Measurement(compound_id=c, assay=assay, value=values[c], source="experimental") for c in validation]
        )
    model = model_services.model_create_initial(
        assay=assay,
        name=assay.name,
        validation_compound_ids=validation,
        algorithm=config.algorithm,
        n_members=config.n_members,
        hyperparameters={**config.hyperparameters, "random_state": seed},
        featurizer=config.featurizer,
        allow_empty_validation=config.mode == "find",
    )
    acquired = set(initial)
    out: list[SimulationRow] = []

    def record(step: int, model: MLModel) -> None:
        if top is not None:
            value = 100.0 * len(acquired & top) / len(top)
        else:
            raw = model.metrics.get(metric)
            value = float(raw) if isinstance(raw, (int, float)) else None
        extra = {k: v for k, v in model.metrics.items() if isinstance(v, (int, float)) and k != "n"}
        if check:
            extra.update(_check_metrics(model, check, values))
        out.append(SimulationRow(strategy, seed, step, len(acquired), metric, value, extra, time.time() - t0))

    record(0, model)
    pool_spec = PoolSpec(kind="compounds", compound_ids=tuple(pool))
    # A --strategy name may be a label for a tuned variant: its params then name the
    # real strategy, e.g. {"uncertainty_ranked": {"strategy": "uncertainty", "batch": ...}}.
    params = dict(config.strategy_params.get(strategy) or {})
    base = str(params.pop("strategy", strategy))
    for step in range(1, config.cycles + 1):
        remaining = len(pool) - len(acquired)
        if remaining <= 0:
            break
        result = cycle_select(
            model=model, user=user, strategy=base, batch_size=min(batch, remaining), params=params or None,
            pool=pool_spec, random_state=seed * 1000 + step,
        )
        for item in LabelQueueItem.objects.filter(cycle=result.cycle).values_list("id", "compound_id"):
            queue_services.label_submit(item_id=item[0], user=user, value=values[item[1]], source="experimental")
            acquired.add(item[1])
        job = cycle_retrain_trigger(cycle_id=result.cycle.pk, user=user, min_new_labels=1, inline=True)
        if job.status != "succeeded":
            raise RuntimeError(f"retrain failed in simulation: {job.error}")
        model = MLModel.objects.get(name=model.name, status="active")
        record(step, model)
        last = out[-1]
        log(f"{strategy} seed {seed} step {step}: {last.labels} labels, {metric} = {last.value}")
    return out


def _check_metrics(model: MLModel, check: list[int], values: dict[int, float]) -> dict[str, float]:
    """The version scored on the check compounds, which no strategy and no training sees."""
    scores = model_services.model_score_compounds(model=model, compound_ids=check)
    truth = np.array([values[int(i)] for i in scores.ids])
    if scores.mean is not None:
        return {"check_rmse": float(np.sqrt(np.mean((scores.mean - truth) ** 2)))}
    return {"check_accuracy": float(np.mean(scores.prediction == truth))}


# --- Summaries and output ------------------------------------------------------------


def summarize(rows: list[SimulationRow], *, lower_is_better: bool) -> dict[str, Any]:
    """Mean ± sd per strategy and step; labels needed to reach random's final mean; curve area."""
    by: dict[str, dict[int, list[tuple[int, float]]]] = {}
    for r in rows:
        if r.value is None:
            continue
        by.setdefault(r.strategy, {}).setdefault(r.step, []).append((r.labels, r.value))
    curves: dict[str, list[dict[str, float]]] = {}
    for strategy, steps in by.items():
        curves[strategy] = [
            {
                "step": step,
                "labels": float(np.mean([x for x, _ in pts])),
                "mean": float(np.mean([v for _, v in pts])),
                "sd": float(np.std([v for _, v in pts], ddof=1)) if len(pts) > 1 else 0.0,
                "n": len(pts),
            }
            for step, pts in sorted(steps.items())
        ]
    summary: dict[str, Any] = {"curves": curves, "strategies": {}}
    target = curves.get("random", [{}])[-1].get("mean") if "random" in curves else None
    for strategy, curve in curves.items():
        final = curve[-1]
        reach = None
        if target is not None:
            for point in curve:
                ok = point["mean"] <= target if lower_is_better else point["mean"] >= target
                if ok:
                    reach = point["labels"]
                    break
        xs = np.array([p["labels"] for p in curve])
        ys = np.array([p["mean"] for p in curve])
        area = float(np.trapezoid(ys, xs) / (xs[-1] - xs[0])) if len(xs) > 1 and xs[-1] > xs[0] else None
        summary["strategies"][strategy] = {
            "final_labels": final["labels"],
            "final_mean": final["mean"],
            "final_sd": final["sd"],
            "labels_to_reach_random_final": reach,
            "normalized_area": area,
        }
    return summary


def write_csv(rows: list[SimulationRow], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    extras = sorted({k for r in rows for k in r.extra})
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["strategy", "seed", "step", "labels", "metric", "value", "seconds", *extras])
        for r in rows:
            w.writerow([r.strategy, r.seed, r.step, r.labels, r.metric, r.value, round(r.seconds, 2),
                        *[r.extra.get(k) for k in extras]])


def plot(summary: dict[str, Any], path: Path, *, title: str, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for strategy, curve in sorted(summary["curves"].items(), key=lambda kv: kv[0] != "random"):
        xs = [p["labels"] for p in curve]
        ys = np.array([p["mean"] for p in curve])
        sd = np.array([p["sd"] for p in curve])
        style = {"color": "0.35", "linestyle": "--"} if strategy == "random" else {}
        ax.plot(xs, ys, label=f"{strategy} (n={curve[-1]['n']})", **style)
        ax.fill_between(xs, ys - sd, ys + sd, alpha=0.15, **({"color": "0.5"} if strategy == "random" else {}))
    ax.set_xlabel("labels")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # label counts are whole numbers
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
