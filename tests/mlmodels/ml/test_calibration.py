"""The predictive std: the ensemble's spread calibrated on out-of-bag errors (ensemble.Calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from mlmodels.ml.ensemble import BootstrapEnsemble, Calibration

FAST = {"n_members": 10, "n_estimators": 60, "learning_rate": 0.2, "max_depth": 3}


def _noisy(n: int, seed: int, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 5)).astype(np.float32)
    y = 2 * X[:, 0] - X[:, 1] + np.sin(3 * X[:, 2]) + rng.normal(0, noise, n)
    return X, y


def _coverage(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    return float(np.mean(np.abs(y - mean) <= 1.96 * std))


def _members(rng: np.random.Generator, n: int, shared: float, n_members: int = 10) -> tuple[np.ndarray, ...]:
    """Members = truth + an error all of them share (sd `shared` x s) + their own (sd s),
    s varying by row; y = truth + assay noise of sd 0.4. The shared part is what a
    bootstrap spread misses: the mean is off by more than the members disagree."""
    s = rng.uniform(0.1, 1.0, n)
    truth = rng.normal(size=n)
    pred = truth + rng.normal(size=n) * shared * s + rng.normal(size=(n_members, n)) * s
    return pred, truth + rng.normal(0, 0.4, n)


@pytest.mark.parametrize("shared", [1.5, 0.5])
def test_the_fit_on_out_of_bag_errors_gives_intervals_that_hold_on_new_rows(shared: float) -> None:
    rng = np.random.default_rng(0)
    pred, y = _members(rng, 5000, shared)
    cal = Calibration.fit(pred, rng.uniform(size=pred.shape) < np.exp(-1), y)
    assert cal is not None and cal.n_rows > 4000
    new, y_new = _members(rng, 20_000, shared)
    mean, spread = new.mean(axis=0), new.std(axis=0)
    std = cal.apply(spread)
    assert _coverage(y_new, mean, spread) < 0.9  # the raw spread: too narrow
    assert 0.93 <= _coverage(y_new, mean, std) <= 0.97
    # The predicted variance matches the squared error on average, not just the 95 % line.
    assert np.mean(std**2) == pytest.approx(np.mean((y_new - mean) ** 2), rel=0.1)
    if shared == 1.5:  # where the spread tells errors apart, the fit keeps weight on it
        assert cal.scale > 0.5


def test_too_few_rows_with_two_out_of_bag_members_give_no_calibration() -> None:
    rng = np.random.default_rng(1)
    pred, y = rng.normal(size=(3, 12)), rng.normal(size=12)
    oob = np.zeros((3, 12), dtype=bool)
    oob[:2, :9] = True  # 9 rows usable, 10 needed
    assert Calibration.fit(pred, oob, y) is None


def test_a_target_the_members_fit_exactly_gives_finite_intervals() -> None:
    X, _ = _noisy(200, seed=5)
    ensemble = BootstrapEnsemble(random_state=0, **FAST).fit(X, np.full(200, -2.0))
    std = ensemble.predictive_std(ensemble.predict(X[:20]).std)
    assert np.all(np.isfinite(std)) and np.all(std >= 0) and float(std.max()) < 1e-3


def test_the_predictive_std_covers_held_out_values_where_the_spread_does_not() -> None:
    X, y = _noisy(600, seed=0)
    X_new, y_new = _noisy(3000, seed=1)
    ensemble = BootstrapEnsemble(random_state=0, **FAST).fit(X, y)
    pred = ensemble.predict(X_new)
    std = ensemble.predictive_std(pred.std)
    # The spread is the members' disagreement and cannot see noise of sd 0.3.
    assert _coverage(y_new, pred.mean, pred.std) < 0.75
    assert 0.88 <= _coverage(y_new, pred.mean, std) <= 0.99
    assert ensemble.calibration_.noise == pytest.approx(0.09, rel=0.5)
    # A monotone map of the spread: the ranking by uncertainty is the spread's.
    assert np.all(np.diff(std[np.argsort(pred.std)]) >= 0)


def test_the_out_of_bag_fit_never_sees_the_kernel_half_s_all_rows_fit() -> None:
    # The all-rows shift saw every training row; the calibration must come from the
    # members' own bootstraps alone, so the shift cannot change it (it does change predictions).
    X, y = _noisy(300, seed=2)
    shifted = BootstrapEnsemble(random_state=0, smooth_all_rows=1.0, **FAST).fit(X, y)
    own = BootstrapEnsemble(random_state=0, smooth_all_rows=0.0, **FAST).fit(X, y)
    assert not np.allclose(shifted.predict(X[:50]).mean, own.predict(X[:50]).mean)
    assert shifted.calibration_ == own.calibration_


@pytest.mark.parametrize(
    "params",
    [
        {"task": "classification"},
        {"target_clip_quantile": 0.5},  # hit finding: compressed predictions, no interval
    ],
)
def test_without_a_calibration_the_predictive_std_is_the_spread(params: dict) -> None:
    X, y = _noisy(200, seed=3)
    if params.get("task") == "classification":
        y = (y > np.median(y)).astype(int)
    ensemble = BootstrapEnsemble(random_state=0, **{**FAST, **params}).fit(X, y)
    assert ensemble.calibration_ is None
    spread = np.array([0.1, 0.5], dtype=np.float32)
    assert ensemble.predictive_std(spread) is spread


def test_an_ensemble_pickled_before_calibration_keeps_its_spread() -> None:
    X, y = _noisy(200, seed=4)
    ensemble = BootstrapEnsemble(random_state=0, **FAST).fit(X, y)
    del ensemble.calibration_  # as unpickled from an artifact written before it
    spread = np.array([0.2], dtype=np.float32)
    assert ensemble.predictive_std(spread) is spread
