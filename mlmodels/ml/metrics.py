"""Validation metrics as plain dicts of JSON-serialisable values.

Every value is a Python float/int/list or None: None where a metric is undefined
(one class present, constant predictions, empty input), never NaN, because these
dicts go straight into a JSONField and an API response.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import stats
from sklearn import metrics as skm

Direction = Literal["lower", "higher"]

# z for a two-sided 95 % Gaussian interval.
_Z95 = 1.96


def primary_metric(task: str) -> tuple[str, Direction]:
    """The metric a model is ranked by, and whether lower or higher is better."""
    if task == "regression":
        return "rmse", "lower"
    if task == "classification":
        return "roc_auc", "higher"
    raise ValueError(f"unknown task {task!r}")


def is_better(task: str, new: float | None, old: float | None) -> bool:
    """True when `new` beats `old` on the task's primary metric (None never wins)."""
    if new is None:
        return False
    if old is None:
        return True
    _, direction = primary_metric(task)
    return new < old if direction == "lower" else new > old


def _f(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return _f(stats.spearmanr(a, b).statistic)


def regression_metrics(
    y_true: Sequence[float] | np.ndarray,
    y_pred: Sequence[float] | np.ndarray,
    y_std: Sequence[float] | np.ndarray | None = None,
    *,
    y_spread: Sequence[float] | np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """RMSE, MAE, R², Spearman; with `y_std` also calibration of the uncertainty.

    `uncertainty_spearman` is Spearman(|error|, std): does a larger std flag a larger
    error? `coverage_95` is the fraction of true values inside mean ± 1.96·std (0.95
    for a well-calibrated Gaussian; raw bootstrap spreads are usually too narrow).
    `y_spread`: the ensemble's raw spread when `y_std` is its calibrated predictive std;
    the Spearman is then taken on the spread (a calibration with no weight on the spread
    makes every std equal, which ranks nothing) and its mean is `mean_spread`.
    """
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError("y_true and y_pred have different lengths")
    out: dict[str, float | int | None] = {"n": int(t.size)}
    if t.size == 0:
        return out | {"rmse": None, "mae": None, "r2": None, "spearman": None}
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    out["rmse"] = _f(np.sqrt(np.mean(err**2)))
    out["mae"] = _f(np.mean(np.abs(err)))
    out["r2"] = _f(1.0 - float(np.sum(err**2)) / ss_tot) if ss_tot > 0 else None
    out["spearman"] = _spearman(t, p)
    if y_std is not None:
        s = np.asarray(y_std, dtype=np.float64).ravel()
        if s.shape != t.shape:
            raise ValueError("y_std has a different length")
        spread = s if y_spread is None else np.asarray(y_spread, dtype=np.float64).ravel()
        if spread.shape != t.shape:
            raise ValueError("y_spread has a different length")
        out["uncertainty_spearman"] = _spearman(np.abs(err), spread)
        out["coverage_95"] = _f(np.mean(np.abs(err) <= _Z95 * s))
        out["mean_std"] = _f(np.mean(s))
        if y_spread is not None:
            out["mean_spread"] = _f(np.mean(spread))
    return out


COVERAGE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def coverage_curve(
    y_true: Sequence[float], y_pred: Sequence[float], y_std: Sequence[float], levels: Sequence[float] = COVERAGE_LEVELS
) -> list[tuple[float, float]]:
    """(nominal level, observed share) of central Gaussian intervals mean ± z·std.

    A calibrated spread puts each point on the diagonal; points below it mean the
    intervals are too narrow (the usual case for bootstrap ensembles)."""
    y, m, sd = (np.asarray(v, dtype=float) for v in (y_true, y_pred, y_std))
    if y.size == 0:
        return []
    err = np.abs(y - m)
    return [(float(p), float(np.mean(err <= stats.norm.ppf(0.5 + p / 2) * sd))) for p in levels]


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float | None:
    """Top-label ECE: Σ_bins (n_bin/n)·|accuracy − mean confidence| over equal-width bins."""
    if y_true.size == 0:
        return None
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    # Right-closed bins so a confidence of exactly 1.0 lands in the last bin.
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return _f(ece)


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    *,
    n_classes: int | None = None,
) -> dict[str, Any]:
    """ROC-AUC (macro one-vs-rest), PR-AUC (macro average precision), accuracy, balanced
    accuracy, macro F1, log loss, Brier (binary: mean (p₁ − y)²; multi-class: mean over
    rows of Σ_k (p_k − y_k)²), ECE (10 bins), confusion matrix.

    `proba` is (n, K); a (n,) vector is read as P(class 1) of a binary task.
    """
    y = np.asarray(y_true, dtype=np.int64).ravel()
    P = np.asarray(proba, dtype=np.float64)
    if P.ndim == 1:
        P = np.column_stack([1.0 - P, P])
    k = int(n_classes or P.shape[1])
    if P.shape != (y.size, k):
        raise ValueError(f"proba must be (n, {k}), got {P.shape}")
    out: dict[str, Any] = {"n": int(y.size), "n_classes": k}
    if y.size == 0:
        return (
            out
            | {
                m: None
                for m in (
                    "roc_auc",
                    "pr_auc",
                    "accuracy",
                    "balanced_accuracy",
                    "f1_macro",
                    "log_loss",
                    "brier",
                    "ece",
                )
            }
            | {"confusion_matrix": [[0] * k for _ in range(k)]}
        )
    pred = P.argmax(axis=1)
    labels = list(range(k))
    onehot = np.eye(k)[y]
    present = [c for c in labels if (y == c).any()]

    # One-vs-rest per class, averaged over classes that have both positives and
    # negatives; None when no class qualifies (e.g. a single class in y_true).
    aucs, aps = [], []
    for c in present:
        if (y != c).any():
            aucs.append(skm.roc_auc_score(onehot[:, c], P[:, c]))
            aps.append(skm.average_precision_score(onehot[:, c], P[:, c]))
    if k == 2 and len(present) == 2:
        # Binary: the usual single AUC / AP on the positive class.
        aucs = [skm.roc_auc_score(y, P[:, 1])]
        aps = [skm.average_precision_score(y, P[:, 1])]
    out["roc_auc"] = _f(np.mean(aucs)) if aucs else None
    out["pr_auc"] = _f(np.mean(aps)) if aps else None
    out["accuracy"] = _f(np.mean(pred == y))
    # Balanced accuracy over the classes present in y_true (recall of an absent class is undefined).
    recalls = [np.mean(pred[y == c] == c) for c in present]
    out["balanced_accuracy"] = _f(np.mean(recalls))
    out["f1_macro"] = _f(skm.f1_score(y, pred, labels=present, average="macro", zero_division=0))
    clipped = np.clip(P, 1e-15, 1.0)
    out["log_loss"] = _f(-np.mean(np.log(clipped[np.arange(y.size), y])))
    if k == 2:
        out["brier"] = _f(np.mean((P[:, 1] - y) ** 2))
    else:
        out["brier"] = _f(np.mean(np.sum((P - onehot) ** 2, axis=1)))
    out["ece"] = expected_calibration_error(y, P)
    out["confusion_matrix"] = skm.confusion_matrix(y, pred, labels=labels).tolist()
    return out
