"""Reads for the cycle pages: lineage choice, running jobs, the chemical-space map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import QuerySet
from sklearn.decomposition import PCA

from compounds.chemistry import unpack_bits
from cycles.models import ActiveLearningCycle, CycleStatus, Job
from mlmodels.models import MLModel, ModelStatus


def cycles_list(*, model_id: int | None = None, status: str | None = None) -> QuerySet[ActiveLearningCycle]:
    """Cycles, newest first; with `model_id`, every cycle of that model's lineage."""
    qs = ActiveLearningCycle.objects.select_related("model", "result_model")
    if model_id:
        qs = qs.filter(model__name__in=MLModel.objects.filter(pk=model_id).values("name"))
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-started_at", "-cycle_number")


# The map is a picture, not an analysis: a few thousand points show the shape of the pool.
MAP_MAX_POOL = 3000
MAP_MAX_LABELED = 1500


def lineage_model_get(*, model_id: Any = None) -> MLModel | None:
    """The version a history page is about: the given one, else the first active model."""
    qs = MLModel.objects.select_related("assay")
    if model_id not in (None, ""):
        try:
            return qs.get(pk=int(model_id))
        except (MLModel.DoesNotExist, ValueError, TypeError):
            return None
    return qs.filter(status=ModelStatus.ACTIVE).order_by("name").first() or qs.order_by("name", "-version").first()


def lineage_training_job_ids(*, model: MLModel) -> list[Any]:
    """Jobs of the lineage's cycles that claim to be training (checked against RQ on read)."""
    return list(
        ActiveLearningCycle.objects.filter(model__name=model.name, status=CycleStatus.TRAINING, job__isnull=False)
        .values_list("job_id", flat=True)
    )


def jobs_by_id(*, job_ids: list[Any]) -> dict[str, Job]:
    return {str(j.pk): j for j in Job.objects.filter(pk__in=[j for j in job_ids if j])}


@dataclass
class SpaceMap:
    """2-D PCA coordinates of the pool sample, the labeled training set and the proposed batch."""

    pool: np.ndarray
    labeled: np.ndarray
    chosen: np.ndarray
    chosen_titles: list[str]
    pool_total: int
    explained: tuple[float, float]


def selection_space_map(
    *,
    pool_fingerprints: np.ndarray,
    chosen_indices: np.ndarray,
    labeled_fingerprints: np.ndarray | None = None,
    chosen_titles: list[str] | None = None,
    seed: int = 0,
) -> SpaceMap:
    """Project fingerprints on the first two principal components of pool + labeled compounds.

    At most MAP_MAX_POOL pool rows (plus every chosen row) and MAP_MAX_LABELED labeled rows
    are used, sampled with a fixed seed so two previews of one pool draw the same map.
    Randomized PCA keeps this well under a second for 2048-bit fingerprints.
    """
    rng = np.random.default_rng(seed)
    n = pool_fingerprints.shape[0]
    chosen = np.asarray(chosen_indices, dtype=np.int64)
    rest = np.setdiff1d(np.arange(n), chosen)
    if rest.size > MAP_MAX_POOL:
        rest = np.sort(rng.choice(rest, MAP_MAX_POOL, replace=False))
    labeled = labeled_fingerprints if labeled_fingerprints is not None else np.zeros((0, pool_fingerprints.shape[1]), np.uint8)
    if labeled.shape[0] > MAP_MAX_LABELED:
        labeled = labeled[np.sort(rng.choice(labeled.shape[0], MAP_MAX_LABELED, replace=False))]
    rows = np.vstack([pool_fingerprints[rest], labeled, pool_fingerprints[chosen]])
    bits = unpack_bits(rows).astype(np.float32)
    if bits.shape[0] < 3:
        coords = np.zeros((bits.shape[0], 2))
        explained = (0.0, 0.0)
    else:
        pca = PCA(n_components=2, svd_solver="randomized", random_state=seed).fit(bits)
        coords = pca.transform(bits)
        explained = (float(pca.explained_variance_ratio_[0]), float(pca.explained_variance_ratio_[1]))
    a, b = rest.size, rest.size + labeled.shape[0]
    return SpaceMap(
        pool=coords[:a],
        labeled=coords[a:b],
        chosen=coords[b:],
        chosen_titles=chosen_titles or [],
        pool_total=n,
        explained=explained,
    )
