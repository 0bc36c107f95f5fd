"""Selection strategies: which pool compounds should be labeled next, and why.

Framework-free (numpy, scipy, scikit-learn; never django) so the same code runs
in a web request, an RQ job, the `simulate` command and a unit test. Services
turn querysets into a `ModelOutputs` and call `select()`.

Conventions every strategy follows:
- a score is "higher = more wanted", whatever the strategy;
- ties are broken by the lower pool index, so a ranking is reproducible;
- scoring and top-k are O(n) (np.partition, never a full sort of the pool), so a
  pool of 1,000,000 compounds is fine; only the `diverse` and `ranked_batch`
  batch modes do O(candidates x batch) work, on the top `pool_factor x batch`
  candidates.

`greedy_sampling` (Wu, Lin & Huang 2019) and `variance_reduction` pick their batch
themselves: each pick changes the next one's score. greedy_sampling costs
O(pool x labeled) for the first scores plus O(pool x batch) for the greedy picks;
variance_reduction O((pool + labeled) x landmarks^2) for its Gaussian-process state
plus O(pool x landmarks x batch) for the picks, so services hand it a sample of a
big pool.

Uncertainty of a compound (used by `uncertainty`, `hybrid` and the
`min_uncertainty` filter): the ensemble standard deviation for regression; for
classification the entropy of the mean class probabilities divided by log(K),
i.e. in [0, 1] whatever the number of classes (1 = uniform).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtr
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from compounds.chemistry import packed_to_csr, tanimoto_matrix
from mlmodels.ml.smooth import KernelBasis, nystrom_whitener

REGRESSION = "regression"
CLASSIFICATION = "classification"
TASKS = (REGRESSION, CLASSIFICATION)
DIRECTIONS = ("maximize", "minimize")
DEFAULT_HYBRID_WEIGHTS: dict[str, float] = {"uncertainty": 0.5, "margin": 0.3, "applicability": 0.2}
# Probabilities are clipped before log() so p = 0 contributes 0 instead of NaN.
_EPS = 1e-12
# Rows of a probability matrix may sum to 1 only up to float32 rounding.
_PROBA_SUM_TOLERANCE = 1e-3

Components = dict[str, float | int | str]


class StrategyError(ValueError):
    """Invalid strategy input; `param` names the offending parameter or model output."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class ModelOutputs:
    """Everything a strategy may need; arrays are aligned over the pool (n compounds).

    Classification probabilities may be given as (n,) for a binary model
    (probability of the positive class); they are stored as (n, 2).
    """

    task: str
    mean: np.ndarray | None = None  # regression mean (n,)
    std: np.ndarray | None = None  # regression ensemble spread (n,)
    proba: np.ndarray | None = None  # classification mean probabilities (n, K)
    member_proba: np.ndarray | None = None  # per-member probabilities (members, n, K), for BALD
    members: np.ndarray | None = None  # regression: per-member predictions (members, n)
    applicability: np.ndarray | None = None  # 1 - max Tanimoto to the training set (n,)
    fingerprints: np.ndarray | None = None  # packed (n, 256) uint8
    labeled_fingerprints: np.ndarray | None = None  # packed (L, 256) uint8 of labeled compounds
    labeled_values: np.ndarray | None = None  # measured values (L,) of the labeled compounds, same order
    features: np.ndarray | None = None  # the model's input matrix X (n, d) over the pool, for variance_reduction
    labeled_features: np.ndarray | None = None  # X (L, d) of the labeled compounds
    # Each feature column's weight in the model's kernel distance (d,), None: all 1. A design
    # then measures distances the way the model's kernel half does (its prior columns count more).
    feature_weights: np.ndarray | None = None
    # X (T, d) of the compounds the model is measured on (its lineage's validation set: the
    # structures, never their values), for a design that aims its variance reduction there.
    target_features: np.ndarray | None = None
    # Regression: the members' predictions (members, T) of those same compounds, for a design
    # that counts the ensemble's own covariance (variance_reduction's ensemble_weight).
    target_members: np.ndarray | None = None
    best_observed: float | None = None  # for expected_improvement
    direction: str = "maximize"  # which way is "better" for the assay

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise StrategyError("task", f"must be one of {TASKS}, got {self.task!r}")
        if self.direction not in DIRECTIONS:
            raise StrategyError("direction", f"must be one of {DIRECTIONS}, got {self.direction!r}")
        for name in ("mean", "std", "applicability", "labeled_values"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _float_array(name, value, ndim=1))
        if self.std is not None and (self.std < 0).any():
            raise StrategyError("std", "must be non-negative")
        if self.proba is not None:
            proba = _float_array("proba", self.proba, ndim=(1, 2))
            if proba.ndim == 1:
                proba = _binary_to_two_columns(proba)
            object.__setattr__(self, "proba", _check_proba("proba", proba))
        if self.member_proba is not None:
            members = _float_array("member_proba", self.member_proba, ndim=(2, 3))
            if members.ndim == 2:
                members = _binary_to_two_columns(members)
            object.__setattr__(self, "member_proba", _check_proba("member_proba", members))
        for name in ("fingerprints", "labeled_fingerprints"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _fingerprint_array(name, value))
        for name in ("members", "target_members"):
            value = getattr(self, name)
            if value is not None:
                value = _float_array(name, value, ndim=2)
                if value.shape[0] < 2:
                    raise StrategyError(name, "needs at least 2 members")
                object.__setattr__(self, name, value)
        if self.target_members is not None:
            if self.target_features is None or self.target_members.shape[1] != self.target_features.shape[0]:
                raise StrategyError("target_members", "needs one column per row of target_features")
            if self.members is not None and self.members.shape[0] != self.target_members.shape[0]:
                raise StrategyError("target_members", "number of members differs from members")
        for name in ("features", "labeled_features", "target_features"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _feature_array(name, value))
        for name in ("labeled_features", "target_features"):
            value = getattr(self, name)
            if self.features is not None and value is not None and self.features.shape[1] != value.shape[1]:
                raise StrategyError(name, "number of columns differs from features")
        if self.feature_weights is not None:
            weights = _float_array("feature_weights", self.feature_weights, ndim=1)
            if self.features is None or weights.shape[0] != self.features.shape[1]:
                raise StrategyError("feature_weights", "needs one weight per feature column")
            if not (np.isfinite(weights).all() and (weights > 0).all()):
                raise StrategyError("feature_weights", "must be finite and > 0")
            object.__setattr__(self, "feature_weights", weights)
        if (
            self.fingerprints is not None
            and self.labeled_fingerprints is not None
            and self.fingerprints.shape[1] != self.labeled_fingerprints.shape[1]
        ):
            raise StrategyError("labeled_fingerprints", "width differs from fingerprints")
        if (
            self.labeled_values is not None
            and self.labeled_fingerprints is not None
            and self.labeled_values.shape[0] != self.labeled_fingerprints.shape[0]
        ):
            raise StrategyError(
                "labeled_values",
                f"{self.labeled_values.shape[0]} values for {self.labeled_fingerprints.shape[0]} labeled fingerprints",
            )
        if (
            self.proba is not None
            and self.member_proba is not None
            and self.proba.shape[1] != self.member_proba.shape[2]
        ):
            raise StrategyError("member_proba", "number of classes differs from proba")
        if self.best_observed is not None:
            try:
                best = float(self.best_observed)
            except (TypeError, ValueError):
                best = math.nan
            if not math.isfinite(best):
                raise StrategyError("best_observed", f"must be a finite number, got {self.best_observed!r}")
            object.__setattr__(self, "best_observed", best)
        sizes = self._pool_sizes()
        if len(set(sizes.values())) > 1:
            raise StrategyError("outputs", f"arrays are not aligned over the pool: {sizes}")

    def _pool_sizes(self) -> dict[str, int]:
        sizes = {
            name: getattr(self, name).shape[0]
            for name in ("mean", "std", "proba", "applicability", "fingerprints", "features")
            if getattr(self, name) is not None
        }
        if self.member_proba is not None:
            sizes["member_proba"] = self.member_proba.shape[1]
        if self.members is not None:
            sizes["members"] = self.members.shape[1]
        return sizes

    @property
    def n(self) -> int:
        sizes = self._pool_sizes()
        if not sizes:
            raise StrategyError("outputs", "no per-compound array given, the pool size is unknown")
        return next(iter(sizes.values()))


@dataclass
class Selection:
    indices: np.ndarray  # chosen pool indices, in priority order (best first)
    scores: np.ndarray  # base-strategy score of every pool compound (n,), higher = more wanted
    components: list[Components]  # per chosen index: why it was picked
    strategy: str
    params: dict[str, Any]  # parameters actually used (defaults and data-derived values filled in)
    eligible: np.ndarray  # (n,) bool: compounds left after `exclude` and `min_uncertainty`


ScoreResult = tuple[np.ndarray, dict[str, np.ndarray]]
# (outputs, base scores, eligible mask, batch size, params) -> (chosen indices, per-pick components)
Picker = Callable[[ModelOutputs, np.ndarray, np.ndarray, int, dict[str, Any]], tuple[np.ndarray, list[Components]]]


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    tasks: tuple[str, ...]
    goal: str  # "improve" (the model) | "find" (the best compounds)
    description: str
    params: Mapping[str, Any]  # strategy-specific parameters and their defaults
    requires: Mapping[str, tuple[str, ...]]  # task -> ModelOutputs fields that must be set
    scorer: Callable[[ModelOutputs, dict[str, Any]], ScoreResult] = field(repr=False, compare=False)
    # Set when the strategy builds its batch itself (each pick changes the next one's
    # score); it then takes batch "top" only.
    picker: Picker | None = field(default=None, repr=False, compare=False)


# --- Array scoring functions (public, each O(n)) ---------------------------


def entropy_scores(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of an (n, K) probability matrix."""
    return -(proba * np.log(np.clip(proba, _EPS, 1.0))).sum(axis=1)


def gaussian_entropy_scores(std: np.ndarray) -> np.ndarray:
    """Differential entropy of N(mean, std^2): the regression analogue of entropy."""
    return 0.5 * math.log(2 * math.pi * math.e) + np.log(np.maximum(std, _EPS))


def least_confidence_scores(proba: np.ndarray) -> np.ndarray:
    return 1.0 - proba.max(axis=1)


def _top_two(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = proba.shape[1]
    part = np.partition(proba, (k - 2, k - 1), axis=1)
    return part[:, -1], part[:, -2]


def margin_scores(proba: np.ndarray) -> np.ndarray:
    """1 - (p1 - p2): 1 when the two most likely classes tie, 0 when the model is sure."""
    p1, p2 = _top_two(proba)
    return 1.0 - (p1 - p2)


def ratio_scores(proba: np.ndarray) -> np.ndarray:
    """p2 / p1 of the two most likely classes."""
    p1, p2 = _top_two(proba)
    return p2 / np.maximum(p1, _EPS)


def threshold_margin_scores(mean: np.ndarray, threshold: float) -> np.ndarray:
    """Regression margin: -|mean - threshold|, highest for predictions on the decision threshold."""
    return -np.abs(mean - threshold)


def bald_scores(member_proba: np.ndarray) -> np.ndarray:
    """Mutual information H[mean_m p_m] - mean_m H[p_m] over ensemble members (nats).

    High where members disagree; ~0 where they agree, even if they agree on 50/50.
    """
    total = entropy_scores(member_proba.mean(axis=0))
    expected = np.mean([entropy_scores(p) for p in member_proba], axis=0)
    # Rounding can take an exact zero slightly negative.
    return np.maximum(total - expected, 0.0)


def _sign(direction: str) -> float:
    return 1.0 if direction == "maximize" else -1.0


def greedy_scores(mean: np.ndarray, direction: str = "maximize") -> np.ndarray:
    return _sign(direction) * mean


def ucb_scores(
    mean: np.ndarray, std: np.ndarray, beta: float = 2.0, direction: str = "maximize"
) -> np.ndarray:
    """Optimistic bound toward the direction: mean + beta*std, or -(mean - beta*std) when minimising."""
    return _sign(direction) * mean + beta * std


def expected_improvement_scores(
    mean: np.ndarray, std: np.ndarray, best_observed: float, xi: float = 0.01, direction: str = "maximize"
) -> np.ndarray:
    """Gaussian expected improvement over `best_observed` (in the assay's units)."""
    improvement = _sign(direction) * (mean - best_observed) - xi
    safe_std = np.where(std > 0, std, 1.0)
    z = improvement / safe_std
    ei = improvement * ndtr(z) + safe_std * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    # A zero-spread prediction improves by exactly its improvement, if positive.
    ei = np.where(std > 0, ei, np.maximum(improvement, 0.0))
    return np.maximum(ei, 0.0)


# Greedy sampling (Wu, Lin & Huang 2019, "Active learning for regression using greedy
# sampling", Information Sciences 474): the distance between compounds a and b is
#   gsx: 1 - Tanimoto(a, b)                      (input space: cover chemical space)
#   gsy: |y_a - y_b|                             (output space: cover the value range)
#   igs: (1 - Tanimoto(a, b)) * |y_a - y_b|      (both: "improved greedy sampling")
# where y is the prediction for a pool compound and the measurement for a labeled one;
# a compound's score is its distance to the nearest labeled compound.
# Why: it needs no calibrated uncertainty (an ensemble trained on 50 labels has a poor
# one) and spreads the labels over chemical space and the value range at once. On the
# solubility benchmark iGS has the best early curve and the smallest curve area of the
# strategies tried, but it does not beat random after ~150 labels, so it is not the
# "improve" default (BENCHMARKS.md, "Model improvement, solubility").
GREEDY_SAMPLING_VARIANTS: dict[str, str] = {
    "igs": "(1 - Tanimoto) x |predicted - measured| to the nearest labeled compound",
    "gsx": "1 - Tanimoto to the nearest labeled compound",
    "gsy": "|predicted - measured| to the nearest labeled compound",
}


def greedy_sampling_pair_distances(
    variant: str,
    fingerprints: np.ndarray | None,
    values: np.ndarray | None,
    ref_fingerprints: np.ndarray | None,
    ref_values: np.ndarray | None,
) -> np.ndarray:
    """(n, m) greedy-sampling distances between n compounds and m reference compounds.

    Only the inputs the variant uses need to be given (fingerprints for gsx/igs,
    values for gsy/igs).
    """
    d: np.ndarray | None = None
    if variant != "gsy":
        d = 1.0 - tanimoto_matrix(fingerprints, ref_fingerprints, chunk=64).astype(float)  # type: ignore[arg-type]
    if variant != "gsx":
        dy = np.abs(values[:, None] - ref_values[None, :])  # type: ignore[index]
        d = dy if d is None else d * dy
    assert d is not None
    return d


def greedy_sampling_scores(
    variant: str,
    fingerprints: np.ndarray | None,
    predicted: np.ndarray | None,
    labeled_fingerprints: np.ndarray | None,
    labeled_values: np.ndarray | None,
) -> np.ndarray:
    """Distance of each pool compound to its nearest labeled compound (n,), in bounded memory.

    O(n x L) distances, computed in blocks of 2,048 pool x 1,024 labeled compounds.
    """
    n = (fingerprints if variant != "gsy" else predicted).shape[0]  # type: ignore[union-attr]
    n_labeled = (labeled_values if variant != "gsx" else labeled_fingerprints).shape[0]  # type: ignore[union-attr]
    out = np.full(n, np.inf)
    for a in range(0, n, 2048):
        rows = slice(a, a + 2048)
        for b in range(0, n_labeled, 1024):
            refs = slice(b, b + 1024)
            block = greedy_sampling_pair_distances(
                variant,
                None if fingerprints is None else fingerprints[rows],
                None if predicted is None else predicted[rows],
                None if labeled_fingerprints is None else labeled_fingerprints[refs],
                None if labeled_values is None else labeled_values[refs],
            )
            out[rows] = np.minimum(out[rows], block.min(axis=1))
    return out


def uncertainty_scores(outputs: ModelOutputs) -> np.ndarray:
    """Ensemble std (regression) or entropy / log K of the mean probabilities (classification)."""
    if outputs.task == REGRESSION:
        return _need(outputs, "std", "uncertainty")
    proba = _need(outputs, "proba", "uncertainty")
    return entropy_scores(proba) / math.log(proba.shape[1])


def min_max_normalize(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant array becomes all zeros (it cannot tell compounds apart)."""
    if values.size == 0:
        return values.astype(float)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros_like(values, dtype=float)
    return (values - lo) / (hi - lo)


def top_k(scores: np.ndarray, k: int, eligible: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k highest scores, best first, ties to the lower index; O(n)."""
    idx = np.arange(scores.shape[0]) if eligible is None else np.flatnonzero(eligible)
    k = min(k, idx.shape[0])
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    s = scores[idx]
    if k < idx.shape[0]:
        # Exact k-th largest value; everything above it is in, ties at it go to
        # the lowest indices (argpartition alone would pick arbitrary tied ones).
        kth = np.partition(s, s.shape[0] - k)[s.shape[0] - k]
        above = np.flatnonzero(s > kth)
        tied = np.flatnonzero(s == kth)[: k - above.shape[0]]
        keep = np.concatenate([above, tied])
        idx, s = idx[keep], s[keep]
    order = np.lexsort((idx, -s))
    return idx[order].astype(np.int64)


# --- Strategy scorers: (outputs, params) -> (scores, component arrays) --------


def _score_uncertainty(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    unc = uncertainty_scores(o)
    return unc, {"uncertainty": unc}


def _regression_threshold(o: ModelOutputs, p: dict[str, Any]) -> float:
    mean = _need(o, "mean", "margin")
    if p.get("threshold") is None:
        # Median of the predictions: the split that is most informative when no
        # activity cut-off is known. Recorded in params so it can be replayed.
        p["threshold"] = float(np.median(mean)) if mean.size else 0.0
    return float(p["threshold"])


def _score_margin(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    if o.task == CLASSIFICATION:
        proba = _need(o, "proba", "margin")
        p1, p2 = _top_two(proba)
        margin = 1.0 - (p1 - p2)
        return margin, {"margin": margin, "p_top": p1, "p_second": p2}
    threshold = _regression_threshold(o, p)
    scores = threshold_margin_scores(o.mean, threshold)  # type: ignore[arg-type]
    return scores, {"distance_to_threshold": -scores}


def _score_entropy(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    if o.task == CLASSIFICATION:
        ent = entropy_scores(_need(o, "proba", "entropy"))
    else:
        ent = gaussian_entropy_scores(_need(o, "std", "entropy"))
    return ent, {"entropy": ent}


def _score_least_confidence(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    lc = least_confidence_scores(_need(o, "proba", "least_confidence"))
    return lc, {"least_confidence": lc}


def _score_ratio(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    r = ratio_scores(_need(o, "proba", "ratio"))
    return r, {"ratio": r}


def _score_bald(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    b = bald_scores(_need(o, "member_proba", "bald"))
    return b, {"bald": b}


def _score_random(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    scores = np.random.default_rng(p["random_state"]).random(o.n)
    return scores, {}


def _score_hybrid(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    weights = _validate_weights(p["weights"])
    p["weights"] = weights
    raw: dict[str, np.ndarray] = {}
    if weights["uncertainty"] > 0:
        raw["uncertainty"] = uncertainty_scores(o)
    if weights["margin"] > 0:
        raw["margin"] = _score_margin(o, p)[0]
    if weights["applicability"] > 0:
        if o.applicability is None:
            raise StrategyError(
                "applicability", "hybrid needs outputs.applicability, or set weights['applicability'] to 0"
            )
        raw["applicability"] = o.applicability
    scores = np.zeros(o.n)
    comps: dict[str, np.ndarray] = {}
    for key, values in raw.items():
        norm = min_max_normalize(values)
        scores += weights[key] * norm
        comps[key] = values
        comps[f"{key}_normalized"] = norm
    return scores, comps


def _score_greedy(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    if o.task == REGRESSION:
        mean = _need(o, "mean", "greedy")
        return greedy_scores(mean, o.direction), {"predicted": mean}
    proba = _need(o, "proba", "greedy")
    k = proba.shape[1]
    cls = k - 1 if p["positive_class"] is None else p["positive_class"]
    if isinstance(cls, bool) or not isinstance(cls, int | np.integer) or not 0 <= cls < k:
        raise StrategyError("positive_class", f"must be a class index in 0..{k - 1}, got {cls!r}")
    p["positive_class"] = int(cls)
    return greedy_scores(proba[:, cls], o.direction), {"p_positive": proba[:, cls]}


def _score_ucb(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    mean, std = _need(o, "mean", "ucb"), _need(o, "std", "ucb")
    beta = _number(p, "beta", minimum=0.0)
    scores = ucb_scores(mean, std, beta, o.direction)
    return scores, {"bound": _sign(o.direction) * scores}


def _score_expected_improvement(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    mean, std = _need(o, "mean", "expected_improvement"), _need(o, "std", "expected_improvement")
    if o.best_observed is None:
        raise StrategyError("best_observed", "expected_improvement needs the best measured value so far")
    xi = _number(p, "xi", minimum=0.0)
    best = float(o.best_observed)
    ei = expected_improvement_scores(mean, std, best, xi, o.direction)
    return ei, {"expected_improvement": ei, "improvement": _sign(o.direction) * (mean - best)}


def _greedy_sampling_inputs(
    o: ModelOutputs, p: dict[str, Any]
) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    variant = p["variant"]
    if variant not in GREEDY_SAMPLING_VARIANTS:
        raise StrategyError(
            "variant", f"unknown variant {variant!r}; choose from {', '.join(GREEDY_SAMPLING_VARIANTS)}"
        )
    fps = _need(o, "fingerprints", f"greedy_sampling ({variant})") if variant != "gsy" else None
    mean = _need(o, "mean", f"greedy_sampling ({variant})") if variant != "gsx" else None
    return variant, fps, mean


def _score_greedy_sampling(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    variant, fps, mean = _greedy_sampling_inputs(o, p)
    labeled_fps = _need(o, "labeled_fingerprints", f"greedy_sampling ({variant})") if variant != "gsy" else None
    labeled_values = _need(o, "labeled_values", f"greedy_sampling ({variant})") if variant != "gsx" else None
    n_labeled = (labeled_values if labeled_fps is None else labeled_fps).shape[0]  # type: ignore[union-attr]
    if n_labeled == 0:
        raise StrategyError(
            "labeled_fingerprints" if labeled_fps is not None else "labeled_values",
            "greedy_sampling measures distances to labeled compounds; there are none",
        )
    dist = greedy_sampling_scores(variant, fps, mean, labeled_fps, labeled_values)
    return dist, {"gs_distance_to_labeled": dist}


def _greedy_sampling_batch(
    o: ModelOutputs, scores: np.ndarray, eligible: np.ndarray, k: int, p: dict[str, Any]
) -> tuple[np.ndarray, list[Components]]:
    """Greedy sampling's batch: after each pick, every candidate's distance becomes the
    smaller of its distance to the labeled set and to the pick (the pick's prediction
    standing in for its measurement), so a batch spreads out instead of piling up."""
    variant, fps, mean = _greedy_sampling_inputs(o, p)
    cands = np.flatnonzero(eligible)
    cur = scores[cands].astype(float)
    cand_fps = None if fps is None else fps[cands]
    cand_mean = None if mean is None else mean[cands]
    picks: list[int] = []
    extra: list[Components] = []
    for _ in range(min(k, cands.shape[0])):
        # argmax returns the first maximum: ties go to the lower pool index.
        j = int(np.argmax(cur))
        picks.append(j)
        extra.append({"gs_distance": float(cur[j])})
        pick = slice(j, j + 1)
        to_pick = greedy_sampling_pair_distances(
            variant,
            cand_fps,
            cand_mean,
            None if cand_fps is None else cand_fps[pick],
            None if cand_mean is None else cand_mean[pick],
        )[:, 0]
        cur = np.minimum(cur, to_pick)
        cur[j] = -np.inf
    return cands[np.asarray(picks, dtype=np.int64)], extra


@dataclass
class VarianceDesign:
    """State of the greedy variance-reduction design over the eligible candidates.

    A Gaussian process with the model's descriptor kernel (quantile-normal
    descriptors, RBF; `mlmodels.ml.smooth.KernelBasis`) in Nyström form: f(x) =
    phi(x) . w, w ~ N(0, I), noise variance `noise`. Its posterior variance does
    not depend on the measured values, so the design needs no trust in a model fit
    on a few labels. With A the posterior precision of w (I + Phi_L' Phi_L / noise)
    and G = Phi_pool' Phi_pool / n, labeling candidate c lowers the mean variance
    over the pool by (u' G u) / (noise + phi_c' u), u = A^-1 phi_c (aimed at other target
    rows, G mixes in their Phi_t' Phi_t / t: the same formula then counts their variance); after each pick
    A^-1 takes a rank-1 update, so a batch of k costs O(k x candidates x landmarks).
    """

    P: np.ndarray  # (C, m) rows A^-1 phi_c of the candidates
    Phi: np.ndarray  # (C, m) phi_c
    G: np.ndarray  # (m, m)
    num: np.ndarray  # (C,) phi_c' A^-1 G A^-1 phi_c
    var: np.ndarray  # (C,) phi_c' A^-1 phi_c: the GP's posterior variance at c
    noise: float

    @classmethod
    def build(
        cls,
        features: np.ndarray,
        labeled: np.ndarray | None,
        *,
        noise: float,
        gamma: float,
        n_landmarks: int,
        seed: int,
        pool_weights: np.ndarray | None = None,
        column_weights: np.ndarray | None = None,
        targets: np.ndarray | None = None,
        pool_share: float = 1.0,
        members: np.ndarray | None = None,
        target_members: np.ndarray | None = None,
        ensemble_weight: float = 0.0,
        target_weights: np.ndarray | None = None,
    ) -> VarianceDesign:
        """`targets`: rows whose variance counts besides the pool's (the validation set);
        the pool's mean variance then counts `pool_share` and the targets' 1 - pool_share.
        `pool_weights` weigh the pool's rows and `target_weights` the targets' in their
        mean (uncertainty_power: where the ensemble is unsure counts more).

        `ensemble_weight` > 0 adds the ensemble's own covariance (members (M, n) over the
        pool, target_members (M, T) over `targets`) to the process's posterior covariance,
        scaled so that weight 1 gives it the same mean variance over the pool. The design
        then also goes where the fitted members disagree in step with the targets, which a
        label-free kernel cannot see."""
        parts = [features]
        if labeled is not None and labeled.shape[0]:
            parts.append(labeled)
        if targets is not None and targets.shape[0]:
            parts.append(targets)
        rows = parts[0] if len(parts) == 1 else np.vstack(parts)
        columns = KernelBasis.usable_columns(rows)
        if columns.size == 0:
            # A fingerprint-only model: the bits themselves, as 0/1 coordinates.
            spread = np.nanmax(rows, axis=0) > np.nanmin(rows, axis=0) if rows.shape[0] else np.zeros(0, bool)
            columns = np.flatnonzero(spread)
        if columns.size == 0:
            raise StrategyError("features", "variance_reduction needs features that vary over the pool")
        if rows.shape[0] > _BASIS_ROWS:
            # Quantiles and landmarks from a sample: as good for the kernel, and the
            # row-unique pass of a 25,000-row fit is most of the design's set-up.
            rows = rows[np.sort(np.random.default_rng(seed).choice(rows.shape[0], _BASIS_ROWS, replace=False))]
        weights = None if column_weights is None else np.asarray(column_weights, dtype=np.float64)[columns]
        basis = KernelBasis(n_landmarks=n_landmarks, gamma=gamma).fit(rows, columns, seed, weights=weights)
        whitener = nystrom_whitener(basis.gram())
        m = whitener.shape[0]
        # Every pool row is a candidate and a target: its features are computed once.
        Phi = _nystrom(basis, whitener, features)
        w = np.ones(features.shape[0]) if pool_weights is None else np.asarray(pool_weights, dtype=np.float64)
        Phi_t = wt = None
        if pool_share < 1 and targets is not None and targets.shape[0]:
            Phi_t = _nystrom(basis, whitener, targets)
            wt = np.ones(targets.shape[0]) if target_weights is None else np.asarray(target_weights, dtype=np.float64)
        A = np.eye(m)
        if labeled is not None and labeled.shape[0]:
            for start in range(0, labeled.shape[0], _DESIGN_BLOCK):
                phi = _nystrom(basis, whitener, labeled[start : start + _DESIGN_BLOCK])
                A += phi.T @ phi / noise
        A_inv = np.linalg.inv(A)
        A_inv = (A_inv + A_inv.T) / 2.0
        if ensemble_weight > 0:
            if members is None:
                raise StrategyError("ensemble_weight", "needs the members' predictions over the pool")
            if Phi_t is not None and target_members is None:
                raise StrategyError("ensemble_weight", "needs the members' predictions of the target compounds")
            return cls._with_ensemble(Phi, Phi_t, A_inv, w, wt, pool_share, members, target_members, ensemble_weight, noise)
        G = _target_gram(Phi, w, Phi_t, wt, pool_share)
        P = Phi @ A_inv
        return cls(P=P, Phi=Phi, G=G, num=np.einsum("ij,ij->i", P @ G, P), var=np.einsum("ij,ij->i", P, Phi), noise=noise)

    @classmethod
    def _with_ensemble(
        cls,
        Phi: np.ndarray,
        Phi_t: np.ndarray | None,
        A_inv: np.ndarray,
        w: np.ndarray,
        wt: np.ndarray | None,
        pool_share: float,
        members: np.ndarray,
        target_members: np.ndarray | None,
        ensemble_weight: float,
        noise: float,
    ) -> VarianceDesign:
        """The design in the posterior's own coordinates: a row psi_x = [phi_x L, sqrt(c) d_x]
        with A^-1 = L L' and d_x the members' deviations from their mean / sqrt(M), so
        psi_x . psi_x' = the process's posterior covariance + c x the ensemble's. The prior
        on the coordinates is then N(0, I), and the same rank-1 updates condition on picks."""
        L = np.linalg.cholesky(A_inv + 1e-12 * np.eye(A_inv.shape[0]))

        def deviations(m: np.ndarray) -> np.ndarray:
            m = np.asarray(m, dtype=np.float64)
            return ((m - m.mean(axis=0)) / np.sqrt(m.shape[0])).T

        psi_gp = Phi @ L
        dev = deviations(members)
        gp_mean_var = float(np.einsum("ij,ij->i", psi_gp, psi_gp).mean())
        ens_mean_var = float(np.einsum("ij,ij->i", dev, dev).mean())
        scale = np.sqrt(ensemble_weight * gp_mean_var / max(ens_mean_var, _EPS))
        Psi = np.hstack([psi_gp, scale * dev])
        Psi_t = None
        if Phi_t is not None:
            assert target_members is not None
            Psi_t = np.hstack([Phi_t @ L, scale * deviations(target_members)])
        G = _target_gram(Psi, w, Psi_t, wt, pool_share)
        return cls(
            P=Psi.copy(), Phi=Psi, G=G, num=np.einsum("ij,ij->i", Psi @ G, Psi),
            var=np.einsum("ij,ij->i", Psi, Psi), noise=noise,
        )

    def gains(self) -> np.ndarray:
        return self.num / (self.noise + self.var)

    def rows(self, idx: np.ndarray) -> VarianceDesign:
        """The same design over a subset of its candidates (copies, so picks do not touch self)."""
        return VarianceDesign(
            P=self.P[idx], Phi=self.Phi[idx], G=self.G, num=self.num[idx], var=self.var[idx], noise=self.noise
        )

    def condition(self, j: int) -> None:
        """Add candidate j to the design, as if it were labeled."""
        u = self.P[j].copy()
        s = self.noise + self.var[j]
        a = (self.Phi @ u) / s
        g = self.G @ u
        self.num += -2.0 * a * (self.P @ g) + a * a * float(u @ g)
        self.var -= a * (a * s)
        self.P -= np.outer(a, u)
        np.maximum(self.var, 0.0, out=self.var)
        np.maximum(self.num, 0.0, out=self.num)


_DESIGN_BLOCK = 4096


def _target_gram(
    pool: np.ndarray, w: np.ndarray, targets: np.ndarray | None, wt: np.ndarray | None, pool_share: float
) -> np.ndarray:
    """G: the weighted mean of the rows' outer products, pool_share of it over the pool and
    the rest over the targets (whose variance the design lowers)."""
    G = np.zeros((pool.shape[1], pool.shape[1]))
    if pool_share > 0:
        G += pool_share * (pool.T @ (pool * w[:, None])) / max(float(w.sum()), 1e-12)
    if targets is not None and wt is not None:
        G += (1.0 - pool_share) * (targets.T @ (targets * wt[:, None])) / max(float(wt.sum()), 1e-12)
    return G


def _nystrom(basis: KernelBasis, whitener: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Nyström features of X's rows, in blocks so the float64 kernel stays small."""
    return np.vstack(
        [basis.kernel(X[start : start + _DESIGN_BLOCK]) @ whitener for start in range(0, max(X.shape[0], 1), _DESIGN_BLOCK)]
    )
_BASIS_ROWS = 5000
# Where the design lowers variance, as the pool's share of it: the pool, the model's
# validation compounds (where every version is measured), or half each.
_DESIGN_TARGETS = {"pool": 1.0, "validation": 0.0, "both": 0.5}
_DESIGN_CANDIDATES = 4000


def _variance_design(o: ModelOutputs, p: dict[str, Any]) -> VarianceDesign:
    features = _need(o, "features", "variance_reduction")
    noise = _number(p, "noise")
    if noise <= 0:
        raise StrategyError("noise", f"must be > 0, got {noise!r}")
    gamma = _number(p, "gamma")
    if gamma <= 0:
        raise StrategyError("gamma", f"must be > 0, got {gamma!r}")
    landmarks = p["landmarks"]
    if isinstance(landmarks, bool) or not isinstance(landmarks, int | np.integer) or not 16 <= landmarks <= 4096:
        raise StrategyError("landmarks", f"must be an integer in 16..4096, got {landmarks!r}")
    if not isinstance(p["model_kernel"], bool):
        raise StrategyError("model_kernel", f"must be true or false, got {p['model_kernel']!r}")
    target = p["target"]
    if not isinstance(target, str) or target not in _DESIGN_TARGETS:
        raise StrategyError("target", f"must be one of {', '.join(_DESIGN_TARGETS)}, got {target!r}")
    pool_share = _DESIGN_TARGETS[target]
    if pool_share < 1 and (o.target_features is None or o.target_features.shape[0] == 0):
        raise StrategyError("target", f"{target!r} needs the model's validation compounds, and it has none")
    seed = 0 if p.get("random_state") is None else int(p["random_state"])
    power = _number(p, "uncertainty_power", minimum=0.0)
    weights = target_weights = None
    if power > 0 and pool_share > 0:
        # Variance lowered where the ensemble is unsure counts more: std^power per pool compound.
        weights = np.maximum(uncertainty_scores(o), _EPS) ** power
    if power > 0 and pool_share < 1:
        # The same for the validation compounds, from the members' spread over them.
        if o.task != REGRESSION or o.target_members is None:
            raise StrategyError(
                "uncertainty_power",
                f"target {target!r} needs a regression model's member predictions of the validation compounds",
            )
        target_weights = np.maximum(o.target_members.std(axis=0), _EPS) ** power
    ensemble_weight = _number(p, "ensemble_weight", minimum=0.0)
    if ensemble_weight > 0:
        if o.task != REGRESSION:
            raise StrategyError("ensemble_weight", "needs a regression model's members")
        _need(o, "members", "variance_reduction with ensemble_weight > 0")
        if pool_share < 1 and o.target_members is None:
            raise StrategyError(
                "ensemble_weight", f"target {target!r} needs the members' predictions of the validation compounds"
            )
    return VarianceDesign.build(
        features,
        o.labeled_features,
        noise=noise,
        gamma=gamma,
        n_landmarks=int(landmarks),
        seed=seed,
        pool_weights=weights,
        target_weights=target_weights,
        column_weights=o.feature_weights if p["model_kernel"] else None,
        targets=o.target_features if pool_share < 1 else None,
        pool_share=pool_share,
        members=o.members,
        target_members=o.target_members,
        ensemble_weight=ensemble_weight,
    )


def _score_variance_reduction(o: ModelOutputs, p: dict[str, Any]) -> ScoreResult:
    design = _variance_design(o, p)
    # Handed to the picker (which pops it before the params are recorded): building the
    # Gaussian-process state is most of the cost, so it is built once per selection.
    p[_DESIGN_KEY] = design
    gain = design.gains()
    return gain, {"variance_reduction": gain, "gp_variance": design.var.copy()}


_DESIGN_KEY = "_variance_design"


def _variance_reduction_batch(
    o: ModelOutputs, scores: np.ndarray, eligible: np.ndarray, k: int, p: dict[str, Any]
) -> tuple[np.ndarray, list[Components]]:
    """The batch one compound at a time: each pick is conditioned on as if labeled, so
    the next one goes where variance is left, not next to the last pick."""
    cands = np.flatnonzero(eligible)
    limit = max(_DESIGN_CANDIDATES, 10 * k)
    if cands.shape[0] > limit:
        # Picks come from the best initial gains only (the whole pool stays the target):
        # each pick then costs O(limit x landmarks), not O(pool x landmarks). Gains only
        # shrink as picks are added, so the best of the rest are rarely outside
        # (bench/variance_reduction.py measures the overlap with the full greedy).
        cands = np.sort(top_k(scores, limit, eligible))
    built = p.pop(_DESIGN_KEY, None)
    design = (_variance_design(o, p) if built is None else built).rows(cands)
    taken = np.zeros(cands.shape[0], dtype=bool)
    picks: list[int] = []
    extra: list[Components] = []
    for _ in range(min(k, cands.shape[0])):
        gain = design.gains()
        gain[taken] = -np.inf
        # argmax returns the first maximum: ties go to the lower pool index.
        j = int(np.argmax(gain))
        picks.append(j)
        extra.append({"variance_reduction_in_batch": float(gain[j])})
        taken[j] = True
        design.condition(j)
    return cands[np.asarray(picks, dtype=np.int64)], extra


_BOTH = (REGRESSION, CLASSIFICATION)
STRATEGIES: dict[str, StrategyInfo] = {
    info.name: info
    for info in (
        StrategyInfo(
            "uncertainty",
            _BOTH,
            "improve",
            "Highest ensemble std (regression) or normalised entropy of the mean probabilities "
            "(classification).",
            {},
            {REGRESSION: ("std",), CLASSIFICATION: ("proba",)},
            _score_uncertainty,
        ),
        StrategyInfo(
            "margin",
            _BOTH,
            "improve",
            "Closest to the decision boundary: 1 - (p1 - p2) for classification; for regression "
            "-|mean - threshold|, threshold defaulting to the median prediction.",
            {"threshold": None},
            {REGRESSION: ("mean",), CLASSIFICATION: ("proba",)},
            _score_margin,
        ),
        StrategyInfo(
            "entropy",
            _BOTH,
            "improve",
            "Highest predictive entropy (Gaussian entropy of the ensemble std for regression).",
            {},
            {REGRESSION: ("std",), CLASSIFICATION: ("proba",)},
            _score_entropy,
        ),
        StrategyInfo(
            "least_confidence",
            (CLASSIFICATION,),
            "improve",
            "Lowest probability of the predicted class (1 - max p).",
            {},
            {CLASSIFICATION: ("proba",)},
            _score_least_confidence,
        ),
        StrategyInfo(
            "ratio",
            (CLASSIFICATION,),
            "improve",
            "Highest ratio p2 / p1 of the two most likely classes.",
            {},
            {CLASSIFICATION: ("proba",)},
            _score_ratio,
        ),
        StrategyInfo(
            "bald",
            (CLASSIFICATION,),
            "improve",
            "Mutual information between prediction and ensemble member (members disagree).",
            {},
            {CLASSIFICATION: ("member_proba",)},
            _score_bald,
        ),
        StrategyInfo(
            "random",
            _BOTH,
            "improve",
            "Uniformly random, seeded by random_state: the baseline every strategy must beat.",
            {},
            {REGRESSION: (), CLASSIFICATION: ()},
            _score_random,
        ),
        StrategyInfo(
            "hybrid",
            _BOTH,
            "improve",
            "Weighted sum of min-max normalised uncertainty, margin and applicability "
            "(distance from the training set).",
            {"weights": dict(DEFAULT_HYBRID_WEIGHTS), "threshold": None},
            {REGRESSION: ("mean", "std"), CLASSIFICATION: ("proba",)},
            _score_hybrid,
        ),
        StrategyInfo(
            "greedy",
            _BOTH,
            "find",
            "Best predicted value in the assay's direction (probability of positive_class, "
            "default the last class, for classification).",
            {"positive_class": None},
            {REGRESSION: ("mean",), CLASSIFICATION: ("proba",)},
            _score_greedy,
        ),
        StrategyInfo(
            "ucb",
            (REGRESSION,),
            "find",
            "Upper confidence bound: mean + beta*std toward the assay's direction.",
            {"beta": 2.0},
            {REGRESSION: ("mean", "std")},
            _score_ucb,
        ),
        StrategyInfo(
            "expected_improvement",
            (REGRESSION,),
            "find",
            "Gaussian expected improvement over best_observed, toward the assay's direction.",
            {"xi": 0.01},
            {REGRESSION: ("mean", "std", "best_observed")},
            _score_expected_improvement,
        ),
        StrategyInfo(
            "greedy_sampling",
            (REGRESSION,),
            "improve",
            "Greedy sampling for regression (Wu, Lin & Huang 2019), one compound at a time: the "
            "compound farthest from every labeled and already picked one, where the distance is "
            "(1 - Tanimoto) x |predicted - measured| (variant igs), 1 - Tanimoto (gsx) or "
            "|predicted - measured| (gsy); an already picked compound counts with its prediction.",
            {"variant": "igs"},
            {REGRESSION: ("mean", "fingerprints", "labeled_fingerprints", "labeled_values")},
            _score_greedy_sampling,
            _greedy_sampling_batch,
        ),
        StrategyInfo(
            "variance_reduction",
            _BOTH,
            "improve",
            "Label-free design (V-optimality): the compounds whose labels would most lower the "
            "mean predictive variance over the whole pool of a Gaussian process with the model's "
            "descriptor kernel (model_kernel: its prior's columns weighted as the model weighs them), "
            "given the labeled compounds; target 'validation' lowers it over the model's validation "
            "compounds instead (their structures, never their values), 'both' half each; the batch is "
            "built one compound at a "
            "time, each pick counted as labeled. Representative and spread out, never spent on "
            "outliers; it does not depend on the model's current fit (unless uncertainty_power > 0 "
            "weights the targets by the model's uncertainty, std^power, or ensemble_weight > 0 adds the "
            "regression members' covariance to the process's, 1 = the same mean variance).",
            {
                "noise": 0.1,
                "gamma": 0.2,
                "landmarks": 512,
                "uncertainty_power": 0.0,
                "model_kernel": True,
                "target": "pool",
                "ensemble_weight": 0.0,
            },
            {REGRESSION: ("features",), CLASSIFICATION: ("features",)},
            _score_variance_reduction,
            _variance_reduction_batch,
        ),
    )
}

BATCH_MODES: dict[str, str] = {
    "top": "The batch_size best scores.",
    "diverse": "k-means (batch_size clusters) over fingerprints of the top pool_factor x batch_size "
    "candidates; the best-scoring member of each cluster.",
    "ranked_batch": "Greedy: alpha * normalised score - (1 - alpha) * max Tanimoto to labeled and already "
    "picked compounds, over the top pool_factor x batch_size candidates (Cardoso et al. 2017).",
    "class_balanced": "Classification: round-robin over predicted classes, best score first in each.",
}
# Parameters every strategy accepts, with their defaults.
COMMON_PARAMS: dict[str, Any] = {
    "batch": "top",
    "pool_factor": 5,
    # Weight of the score in ranked_batch; "auto" = Cardoso's schedule, where the
    # diversity weight is |unlabeled| / (|unlabeled| + |labeled|).
    "alpha": 0.5,
    "min_uncertainty": None,
    # A schedule: {"strategy": name, "until_labeled": n, "params": {...}} selects with that
    # strategy while the model has been trained on fewer than n compounds, then with this
    # one (see `select`).
    "warmup": None,
}
WARMUP_KEYS = ("strategy", "until_labeled", "params")


# --- Entry point -------------------------------------------------------------


def select(
    strategy: str,
    outputs: ModelOutputs,
    batch_size: int,
    *,
    params: Mapping[str, Any] | None = None,
    random_state: int | None = None,
    exclude: np.ndarray | None = None,
) -> Selection:
    """Score the pool with `strategy` and choose up to `batch_size` compounds.

    `exclude` (bool mask (n,) or pool indices) removes compounds already labeled
    or pending. A batch larger than the eligible pool returns every eligible
    compound. `random_state` seeds `random` and the k-means of `diverse`
    (which uses 0 when it is None so a diverse batch is reproducible).
    A `warmup` parameter hands the batch to another strategy while the model has
    been trained on fewer than `until_labeled` compounds (the rows of
    `outputs.labeled_fingerprints`): e.g. greedy sampling spreads the first few
    hundred labels over chemical space, where an ensemble's spread is still noise.
    """
    info = STRATEGIES.get(strategy)
    if info is None:
        raise StrategyError("strategy", f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if not isinstance(outputs, ModelOutputs):
        raise StrategyError("outputs", "must be a ModelOutputs")
    if outputs.task not in info.tasks:
        raise StrategyError("strategy", f"{strategy!r} supports {' and '.join(info.tasks)} models only")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise StrategyError("batch_size", f"must be an integer >= 1, got {batch_size!r}")
    p = _resolve_params(info, params)
    if p["warmup"] is not None:
        warmup = _validate_warmup(p["warmup"], strategy, outputs, p)
        p["warmup"] = warmup
        if _n_labeled(outputs) < warmup["until_labeled"]:
            return _select_warmup(strategy, p, outputs, batch_size, random_state, exclude)
    p["random_state"] = random_state
    n = outputs.n

    scores, comps = info.scorer(outputs, p)
    scores = np.asarray(scores, dtype=float)

    eligible = _exclusion_mask(exclude, n)
    if p["min_uncertainty"] is not None:
        threshold = _number(p, "min_uncertainty")
        try:
            unc = uncertainty_scores(outputs)
        except StrategyError as exc:
            raise StrategyError("min_uncertainty", exc.message) from None
        eligible &= unc >= threshold

    mode = p["batch"]
    extra: list[Components]
    if info.picker is not None:
        if mode != "top":
            raise StrategyError("batch", f"{strategy} builds its batch itself; use batch 'top'")
        chosen, extra = info.picker(outputs, scores, eligible, int(batch_size), p)
    elif mode == "top":
        chosen = top_k(scores, int(batch_size), eligible)
        extra = [{} for _ in chosen]
    elif mode == "diverse":
        chosen, extra = _diverse(outputs, scores, eligible, int(batch_size), p)
    elif mode == "ranked_batch":
        chosen, extra = _ranked_batch(outputs, scores, eligible, int(batch_size), p)
    else:
        chosen, extra = _class_balanced(outputs, scores, eligible, int(batch_size))

    components = _components(outputs, chosen, scores, comps, extra)
    del p["random_state"]
    return Selection(chosen, scores, components, strategy, p, eligible)


def _n_labeled(outputs: ModelOutputs) -> int:
    labeled = outputs.labeled_fingerprints if outputs.labeled_fingerprints is not None else outputs.labeled_values
    if labeled is None:
        raise StrategyError(
            "warmup", "a warm-up schedule counts the labeled compounds: outputs.labeled_fingerprints is needed"
        )
    return int(labeled.shape[0])


def _validate_warmup(value: Any, strategy: str, outputs: ModelOutputs, main: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise StrategyError(
            "warmup", "must be a mapping like {'strategy': 'greedy_sampling', 'until_labeled': 300}"
        )
    unknown = set(value) - set(WARMUP_KEYS)
    if unknown:
        raise StrategyError("warmup", f"unknown key(s) {sorted(unknown)}; known: {', '.join(WARMUP_KEYS)}")
    name = value.get("strategy")
    info = STRATEGIES.get(name) if isinstance(name, str) else None
    if info is None:
        raise StrategyError("warmup", f"unknown warm-up strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if outputs.task not in info.tasks:
        raise StrategyError("warmup", f"{name!r} supports {' and '.join(info.tasks)} models only")
    until = value.get("until_labeled")
    if isinstance(until, bool) or not isinstance(until, int | np.integer) or until < 1:
        raise StrategyError("warmup", f"until_labeled must be an integer >= 1, got {until!r}")
    inner = value.get("params") or {}
    if not isinstance(inner, Mapping):
        raise StrategyError("warmup", "params must be a mapping of the warm-up strategy's parameters")
    if inner.get("warmup") is not None:
        raise StrategyError("warmup", "a warm-up strategy cannot have a warm-up of its own")
    if name == strategy:
        # The same strategy is a schedule only with other settings (e.g. a design that
        # later also counts the ensemble's covariance); unknown names are refused later.
        same = {**main, "warmup": None}
        try:
            same_settings = _resolve_params(info, inner) == same
        except StrategyError:
            same_settings = False
        if same_settings:
            raise StrategyError(
                "warmup", "the warm-up must differ from the strategy it leads into (another strategy or other params)"
            )
    return {"strategy": name, "until_labeled": int(until), "params": dict(inner)}


def _select_warmup(
    strategy: str,
    p: dict[str, Any],
    outputs: ModelOutputs,
    batch_size: int,
    random_state: int | None,
    exclude: np.ndarray | None,
) -> Selection:
    """The batch of a strategy still in its warm-up: picked by the warm-up strategy,
    recorded under the strategy asked for, each pick saying which stage chose it."""
    warmup = p["warmup"]
    try:
        inner = select(
            warmup["strategy"], outputs, batch_size, params=warmup["params"],
            random_state=random_state, exclude=exclude,
        )
    except StrategyError as exc:
        # Name the schedule, so an API client knows which of its parameters is wrong.
        raise StrategyError(f"warmup.{exc.param}", exc.message) from None
    stage = {"stage": "warmup", "picked_by": warmup["strategy"]}
    params = {**p, "warmup": {**warmup, "params": inner.params}, **stage}
    components = [{**c, **stage} for c in inner.components]
    return Selection(inner.indices, inner.scores, components, strategy, params, inner.eligible)


def _resolve_params(info: StrategyInfo, params: Mapping[str, Any] | None) -> dict[str, Any]:
    resolved = {**COMMON_PARAMS, **{k: _copy(v) for k, v in info.params.items()}}
    for key, value in (params or {}).items():
        if key not in resolved:
            raise StrategyError(
                key, f"unknown parameter for {info.name!r}; known: {', '.join(sorted(resolved))}"
            )
        resolved[key] = _copy(value)
    if resolved["batch"] not in BATCH_MODES:
        raise StrategyError(
            "batch", f"unknown batch mode {resolved['batch']!r}; choose from {', '.join(BATCH_MODES)}"
        )
    resolved["pool_factor"] = _number(resolved, "pool_factor", minimum=1.0)
    if resolved["alpha"] != "auto":
        alpha = _number(resolved, "alpha", minimum=0.0)
        if alpha > 1.0:
            raise StrategyError("alpha", "must be between 0 and 1, or 'auto'")
    return resolved


def _copy(value: Any) -> Any:
    # Defaults are dicts shared by every call; the resolved params get written to.
    return dict(value) if isinstance(value, Mapping) else value


def _validate_weights(weights: Any) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        raise StrategyError("weights", "must be a mapping like {'uncertainty': 0.5, 'margin': 0.3}")
    unknown = set(weights) - set(DEFAULT_HYBRID_WEIGHTS)
    if unknown:
        raise StrategyError(
            "weights", f"unknown key(s) {sorted(unknown)}; known: {sorted(DEFAULT_HYBRID_WEIGHTS)}"
        )
    clean = {key: 0.0 for key in DEFAULT_HYBRID_WEIGHTS}
    for key, value in weights.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float | np.number)
            or not math.isfinite(value)
        ):
            raise StrategyError("weights", f"{key} must be a finite number, got {value!r}")
        if value < 0:
            raise StrategyError("weights", f"{key} must be non-negative, got {value!r}")
        clean[key] = float(value)
    if not any(clean.values()):
        raise StrategyError("weights", "at least one weight must be positive")
    return clean


def _exclusion_mask(exclude: np.ndarray | None, n: int) -> np.ndarray:
    eligible = np.ones(n, dtype=bool)
    if exclude is None:
        return eligible
    exclude = np.asarray(exclude)
    if exclude.dtype == bool:
        if exclude.shape != (n,):
            raise StrategyError("exclude", f"a boolean mask must have shape ({n},), got {exclude.shape}")
        return ~exclude
    if exclude.size and (
        not np.issubdtype(exclude.dtype, np.integer) or exclude.min() < 0 or exclude.max() >= n
    ):
        raise StrategyError("exclude", f"must be a boolean mask or pool indices in 0..{n - 1}")
    eligible[exclude.astype(np.int64)] = False
    return eligible


def _candidates(scores: np.ndarray, eligible: np.ndarray, k: int, p: dict[str, Any]) -> np.ndarray:
    return top_k(scores, math.ceil(p["pool_factor"] * k), eligible)


def _diverse(
    o: ModelOutputs, scores: np.ndarray, eligible: np.ndarray, k: int, p: dict[str, Any]
) -> tuple[np.ndarray, list[Components]]:
    fps = _need(o, "fingerprints", "diverse")
    cands = _candidates(scores, eligible, k, p)
    if cands.shape[0] <= k:
        return cands, [{"cluster": i, "cluster_size": 1} for i in range(cands.shape[0])]
    # Morgan fingerprints set ~2% of their bits: k-means on a sparse matrix is an
    # order of magnitude faster than on the dense 0/1 array.
    bits = packed_to_csr(fps[cands], np.float32)
    seed = 0 if p["random_state"] is None else p["random_state"]
    # One k-means++ start can merge a lone distinct chemotype into a big cluster;
    # three starts fix that at small sizes, where they are cheap.
    n_init = 3 if cands.shape[0] * k <= 1_000_000 else 1
    with warnings.catch_warnings():
        # Identical fingerprints can leave fewer distinct clusters than asked;
        # handled below by filling from the best remaining candidates.
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = KMeans(n_clusters=k, n_init=n_init, max_iter=100, random_state=seed).fit_predict(bits)
    sizes = np.bincount(labels, minlength=k)
    # Candidates are in ranking order, so a label's first occurrence is its best member.
    _, first = np.unique(labels, return_index=True)
    positions = np.sort(first)
    if positions.shape[0] < k:
        rest = np.setdiff1d(np.arange(cands.shape[0]), positions)[: k - positions.shape[0]]
        positions = np.sort(np.concatenate([positions, rest]))
    return cands[positions], [
        {"cluster": int(labels[i]), "cluster_size": int(sizes[labels[i]])} for i in positions
    ]


def _ranked_batch(
    o: ModelOutputs, scores: np.ndarray, eligible: np.ndarray, k: int, p: dict[str, Any]
) -> tuple[np.ndarray, list[Components]]:
    fps = _need(o, "fingerprints", "ranked_batch")
    labeled = o.labeled_fingerprints
    n_labeled = 0 if labeled is None else labeled.shape[0]
    if p["alpha"] == "auto":
        n_unlabeled = int(eligible.sum())
        p["alpha"] = n_labeled / (n_unlabeled + n_labeled) if n_unlabeled + n_labeled else 0.5
    alpha = float(p["alpha"])
    cands = _candidates(scores, eligible, k, p)
    m = cands.shape[0]
    cand_fps = fps[cands]
    norm = min_max_normalize(scores[cands])
    sim_labeled = np.zeros(m) if not n_labeled else _nearest(cand_fps, labeled)[1]  # type: ignore[arg-type]
    sim_batch = np.zeros(m)
    taken = np.zeros(m, dtype=bool)
    picks: list[int] = []
    extra: list[Components] = []
    for _ in range(min(k, m)):
        combined = alpha * norm - (1.0 - alpha) * np.maximum(sim_labeled, sim_batch)
        combined[taken] = -np.inf
        # argmax returns the first maximum: candidates are in ranking order, so a
        # tie goes to the better base score, then the lower pool index.
        j = int(np.argmax(combined))
        picks.append(j)
        extra.append(
            {
                "ranked_score": float(combined[j]),
                "max_sim_to_batch": float(sim_batch[j]),
                "alpha": alpha,
            }
        )
        taken[j] = True
        sim_batch = np.maximum(sim_batch, tanimoto_matrix(cand_fps[j : j + 1], cand_fps)[0])
    return cands[np.asarray(picks, dtype=np.int64)], extra


def _class_balanced(
    o: ModelOutputs, scores: np.ndarray, eligible: np.ndarray, k: int
) -> tuple[np.ndarray, list[Components]]:
    if o.task != CLASSIFICATION:
        raise StrategyError("batch", "class_balanced needs a classification model")
    # A BALD selection may come with member probabilities only.
    proba = o.member_proba.mean(axis=0) if o.proba is None and o.member_proba is not None else o.proba
    if proba is None:
        raise StrategyError("proba", "class_balanced needs outputs.proba to know the predicted classes")
    predicted = proba.argmax(axis=1)
    per_class = [top_k(scores, k, eligible & (predicted == c)) for c in range(proba.shape[1])]
    picks: list[int] = []
    extra: list[Components] = []
    for rnd in range(k):
        # Within a round the classes' next-best compounds go best first, so a
        # scientist who labels only part of the batch still sees every class.
        row = [int(lst[rnd]) for lst in per_class if rnd < lst.shape[0]]
        if not row:
            break
        row.sort(key=lambda i: (-scores[i], i))
        for i in row[: k - len(picks)]:
            picks.append(i)
            extra.append({"round": rnd})
    return np.asarray(picks, dtype=np.int64), extra


def _nearest(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index and Tanimoto of each row of `a`'s nearest row in `b`, in bounded memory.

    tanimoto_matrix broadcasts a (rows x len(b) x 32) uint64 block; chunking both
    sides keeps that near 16 MB even against 100,000 labeled compounds.
    """
    best = np.full(a.shape[0], -1.0)
    arg = np.zeros(a.shape[0], dtype=np.int64)
    step = 1024
    for start in range(0, b.shape[0], step):
        sims = tanimoto_matrix(a, b[start : start + step], chunk=64)
        local = sims.argmax(axis=1)
        value = sims[np.arange(a.shape[0]), local]
        better = value > best  # strict: the earlier (lower-index) neighbour wins ties
        best[better] = value[better]
        arg[better] = local[better] + start
    return arg, best


def _components(
    o: ModelOutputs,
    chosen: np.ndarray,
    scores: np.ndarray,
    comps: dict[str, np.ndarray],
    extra: list[Components],
) -> list[Components]:
    out: list[Components] = [{"rank": r, "score": float(scores[i])} for r, i in enumerate(chosen)]
    context: dict[str, np.ndarray] = {}
    if chosen.size:
        if o.task == REGRESSION and o.mean is not None:
            context["predicted"] = o.mean[chosen]
        if o.task == CLASSIFICATION and o.proba is not None:
            context["predicted_class"] = o.proba[chosen].argmax(axis=1)
            context["p_top"] = o.proba[chosen].max(axis=1)
        if o.task == REGRESSION and o.std is not None:
            context["uncertainty"] = o.std[chosen]
        if o.task == CLASSIFICATION and o.proba is not None:
            context["uncertainty"] = entropy_scores(o.proba[chosen]) / math.log(o.proba.shape[1])
        if o.applicability is not None:
            context["applicability"] = o.applicability[chosen]
        if (
            o.fingerprints is not None
            and o.labeled_fingerprints is not None
            and o.labeled_fingerprints.shape[0]
        ):
            nearest, sim = _nearest(o.fingerprints[chosen], o.labeled_fingerprints)
            context["nearest_labeled"] = nearest
            context["max_sim_to_labeled"] = sim
    for r, i in enumerate(chosen):
        row = out[r]
        for key, values in comps.items():
            row[key] = _py(values[i])
        for key, values in context.items():
            row.setdefault(key, _py(values[r]))
        row.update(extra[r])
    return out


def _py(value: Any) -> float | int:
    return int(value) if isinstance(value, np.integer) else float(value)


# --- Input validation --------------------------------------------------------


def _need(o: ModelOutputs, name: str, strategy: str) -> np.ndarray:
    value = getattr(o, name)
    if value is None:
        raise StrategyError(name, f"{strategy} needs outputs.{name} for a {o.task} model")
    return value


def _number(p: dict[str, Any], name: str, *, minimum: float | None = None) -> float:
    value = p[name]
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not math.isfinite(value):
        raise StrategyError(name, f"must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise StrategyError(name, f"must be >= {minimum}, got {value!r}")
    return float(value)


def _float_array(name: str, value: Any, *, ndim: int | tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in allowed:
        raise StrategyError(
            name, f"must have {' or '.join(map(str, allowed))} dimension(s), got shape {arr.shape}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)
        raise StrategyError(name, f"contains NaN or infinite values (first at {tuple(map(int, where))})")
    return arr


def _feature_array(name: str, value: Any) -> np.ndarray:
    # NaN is allowed: a descriptor RDKit could not compute is missing, as in the model.
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise StrategyError(name, "must be a numeric matrix") from None
    if arr.ndim != 2:
        raise StrategyError(name, f"must have 2 dimensions, got shape {arr.shape}")
    return arr


def _binary_to_two_columns(proba: np.ndarray) -> np.ndarray:
    """A binary model's (..., n) probability of the positive class -> (..., n, 2)."""
    return np.stack([1.0 - proba, proba], axis=-1)


def _check_proba(name: str, proba: np.ndarray) -> np.ndarray:
    if proba.shape[-1] < 2:
        raise StrategyError(name, "needs at least two classes")
    if (proba < -_PROBA_SUM_TOLERANCE).any() or (proba > 1 + _PROBA_SUM_TOLERANCE).any():
        raise StrategyError(name, "probabilities must lie in [0, 1] (were logits passed?)")
    if proba.size and not np.allclose(proba.sum(axis=-1), 1.0, atol=_PROBA_SUM_TOLERANCE):
        raise StrategyError(name, "each row of class probabilities must sum to 1")
    return np.clip(proba, 0.0, 1.0)


def _fingerprint_array(name: str, value: Any) -> np.ndarray:
    arr = np.ascontiguousarray(value)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] % 8:
        raise StrategyError(
            name,
            f"must be packed fingerprints, a 2-D uint8 array with a width divisible by 8; "
            f"got {arr.dtype} {arr.shape}",
        )
    return arr
