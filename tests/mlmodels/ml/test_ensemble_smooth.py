"""The smooth (Nyström kernel ridge) half of regression members: mlmodels.ml.smooth."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from mlmodels.ml.ensemble import BootstrapEnsemble, RegressionPrediction
from mlmodels.ml.smooth import KernelBasis, fit_kernel_ridge, nystrom_whitener

FAST = {"n_members": 4, "n_estimators": 25, "learning_rate": 0.2, "max_depth": 3}


def _data(seed: int = 0, n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """8 fingerprint-like 0/1 columns + 4 continuous 'descriptors' (one with NaNs)."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n, 8)).astype(np.float32)
    desc = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.sin(desc[:, 0]) + 0.5 * desc[:, 1] + 0.3 * bits[:, 0] + rng.normal(0, 0.05, n)
    desc[::15, 3] = np.nan
    return np.hstack([bits, desc]), y


def test_the_basis_uses_the_non_binary_columns_only() -> None:
    X, _ = _data()
    X[:, 9] = 3.0  # constant: nothing for a kernel to use
    np.testing.assert_array_equal(KernelBasis.usable_columns(X), [8, 10, 11])


def test_a_fixed_seed_gives_identical_members_and_another_seed_does_not() -> None:
    X, y = _data()
    a = BootstrapEnsemble(random_state=3, **FAST).fit(X, y)
    b = BootstrapEnsemble(random_state=3, **FAST).fit(X, y)
    c = BootstrapEnsemble(random_state=4, **FAST).fit(X, y)
    assert a.basis_ is not None
    np.testing.assert_array_equal(a.smooth_coef_, b.smooth_coef_)
    np.testing.assert_array_equal(a.predict(X).members, b.predict(X).members)
    assert not np.allclose(a.smooth_coef_, c.smooth_coef_)


def test_members_blend_trees_and_kernel_ridge_and_still_disagree() -> None:
    X, y = _data()
    model = BootstrapEnsemble(smooth_weight=0.4, **FAST).fit(X, y)
    pred = model.predict(X)
    assert isinstance(pred, RegressionPrediction) and pred.members is not None
    trees = np.stack([m.inplace_predict(X) for m in model.members_])
    smooth = model.smooth_members(X)
    assert smooth is not None and smooth.shape == (4, X.shape[0])
    np.testing.assert_allclose(pred.members, 0.6 * trees + 0.4 * smooth, atol=1e-4)
    assert (pred.std > 0).all()
    # Each smooth half is a real fit, not a constant: it follows y on its training data.
    assert np.corrcoef(smooth.mean(axis=0), y)[0, 1] > 0.8


def test_the_blend_is_not_worse_than_trees_alone_on_a_smooth_target() -> None:
    X, y = _data(0, 400)
    Xv, yv = _data(1, 200)
    trees = BootstrapEnsemble(smooth_weight=0.0, **FAST).fit(X, y)
    blend = BootstrapEnsemble(**FAST).fit(X, y)

    def rmse(model: BootstrapEnsemble) -> float:
        return float(np.sqrt(np.mean((model.predict_value(Xv) - yv) ** 2)))

    assert rmse(blend) < rmse(trees)


@pytest.mark.parametrize("params", [{"smooth_weight": 0.0}, {"algorithm": "rf"}])
def test_the_smooth_part_is_off_when_asked_and_for_non_xgboost(params: dict) -> None:
    X, y = _data()
    model = BootstrapEnsemble(**(FAST | params)).fit(X, y)
    assert model.basis_ is None and model.smooth_members(X) is None


def test_with_a_clipped_target_the_smooth_part_fits_the_clipped_values() -> None:
    X, y = _data()
    model = BootstrapEnsemble(**(FAST | {"target_clip_quantile": 0.5, "target_clip_side": "high"})).fit(X, y)
    assert model.basis_ is not None
    level = model.target_clip_
    smooth = model.smooth_members(X).mean(axis=0)
    # Fit on min(y, level): the smooth part's training predictions above the level stay
    # near it (ridge shrinkage may overshoot a little), far below the raw maximum.
    above = y > level
    assert np.abs(smooth[above] - level).mean() < 0.25 * np.abs(y[above] - level).mean()


def test_bits_only_and_classification_models_are_pure_trees() -> None:
    X, y = _data()
    bits_model = BootstrapEnsemble(**FAST).fit(X[:, :8], y)
    assert bits_model.basis_ is None
    member = bits_model.members_[0]
    assert isinstance(member, xgb.Booster)
    np.testing.assert_array_equal(bits_model.predict(X[:, :8]).members[0], member.inplace_predict(X[:, :8]))
    clf = BootstrapEnsemble(task="classification", **FAST).fit(X, (y > np.median(y)).astype(int))
    assert clf.basis_ is None


def test_far_from_the_training_data_the_spread_grows() -> None:
    X, y = _data(0, 300)
    model = BootstrapEnsemble(**FAST).fit(X, y)
    near = X[:50]
    far = X[:50].copy()
    far[:, 8:10] = 8.0  # beyond every training value of two descriptors
    assert model.predict(far).std.mean() > model.predict(near).std.mean()


@pytest.mark.parametrize("params", [{"smooth_weight": 1.5}, {"smooth_all_rows": 1.2}, {"smooth_all_rows": -0.1}])
def test_it_refuses_a_weight_outside_zero_one(params: dict) -> None:
    X, y = _data()
    with pytest.raises(ValueError, match=next(iter(params))):
        BootstrapEnsemble(**params, **FAST).fit(X, y)


def test_the_all_rows_share_moves_the_kernel_mean_and_leaves_the_spread_alone() -> None:
    X, y = _data(0, 200)
    Xv, _ = _data(1, 100)
    bags = BootstrapEnsemble(smooth_all_rows=0.0, **FAST).fit(X, y)
    half = BootstrapEnsemble(smooth_all_rows=0.5, **FAST).fit(X, y)
    whole = BootstrapEnsemble(smooth_all_rows=1.0, **FAST).fit(X, y)
    # The kernel half on all rows, fit directly: what share 1 must average to.
    assert whole.basis_ is not None
    P_whitener = nystrom_whitener(whole.basis_.gram())
    K = whole.basis_.kernel(X)
    coef, intercept = fit_kernel_ridge(K @ P_whitener, y, P_whitener, whole.smooth_alpha)
    reference = whole.basis_.kernel(Xv) @ coef + intercept
    smooth = {m: m.smooth_members(Xv) for m in (bags, half, whole)}
    np.testing.assert_allclose(smooth[whole].mean(axis=0), reference, atol=1e-4)
    np.testing.assert_allclose(smooth[half].mean(axis=0), 0.5 * smooth[bags].mean(axis=0) + 0.5 * reference, atol=1e-4)
    assert np.abs(smooth[half].mean(axis=0) - smooth[bags].mean(axis=0)).max() > 1e-3
    # Every member moved by the same function: the members' spread (the uncertainty) is the bootstraps'.
    preds = {m: m.predict(Xv) for m in (bags, half, whole)}
    np.testing.assert_allclose(preds[half].std, preds[bags].std, atol=1e-4)
    np.testing.assert_allclose(preds[whole].std, preds[bags].std, atol=1e-4)
    assert (preds[half].std > 0).all()


def _interp_reference(basis: KernelBasis, X: np.ndarray) -> np.ndarray:
    """The quantile-normal transform column by column with numpy's own np.interp."""
    out = np.zeros((X.shape[0], basis.columns_.size))
    for j, col in enumerate(basis.columns_):
        if basis.knots_[j].size > 1:
            out[:, j] = np.interp(X[:, col], basis.knots_[j], basis.scores_[j])
    out[np.isnan(out)] = 0.0
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_quantile_transform_equals_numpy_interp_bit_for_bit(dtype: type) -> None:
    rng = np.random.default_rng(3)
    n = 6000
    X = np.column_stack([
        rng.normal(size=n),  # continuous
        rng.poisson(0.4, size=n),  # a count that is 0 for most rows: tied quantiles
        np.where(rng.random(n) < 0.1, np.nan, rng.exponential(size=n)),  # missing values
        np.full(n, 2.5),  # constant: one knot
        rng.integers(0, 2, size=n),  # bits
        rng.lognormal(0.0, 3.0, size=n),  # heavy tail: most knots in the first buckets of the guide
    ]).astype(dtype)
    basis = KernelBasis(n_landmarks=16).fit(X[:1000], np.array([0, 1, 2, 3, 5]), seed=0)
    # Rows outside the fitted range, on the knots themselves, on the guide's bucket edges, and NaN.
    X[:3, 0] = [-1e9, 1e9, basis.knots_[0][5]]
    X[3, 1] = basis.knots_[1][-1]
    X[4:4 + basis.knots_[4].size, 5] = basis.knots_[4]
    k0 = basis.knots_[0].astype(np.float64)
    X[300:557, 0] = k0[0] + np.arange(257) * (k0[-1] - k0[0]) / 256
    expected = _interp_reference(basis, X)
    for workers in (1, 2, 3):
        got = basis.transform(X, workers=workers)
        np.testing.assert_array_equal(got, expected)
    assert (expected[np.isnan(X[:, 2]), 2] == 0.0).all() and (expected[:, 3] == 0.0).all()
    assert expected[0, 0] == basis.scores_[0][0] and expected[1, 0] == basis.scores_[0][-1]


def test_the_rbf_kernel_equals_the_numpy_formula_bit_for_bit_for_any_thread_split() -> None:
    X, _ = _data(n=5000)
    basis = KernelBasis(n_landmarks=64).fit(X[:300], KernelBasis.usable_columns(X), seed=1)
    T, g = _interp_reference(basis, X), basis.gamma_
    e = T @ (2.0 * g * basis.landmarks_).T
    e -= g * (T * T).sum(axis=1)[:, None]
    e -= g * basis.landmark_sq_[None, :]
    expected = np.exp(np.minimum(e, 0.0))
    for workers in (1, 2):
        np.testing.assert_array_equal(basis.kernel(X, workers=workers), expected)
    # A landmark is at distance 0 from itself.
    assert basis.kernel(X[:300]).max() == 1.0


def test_a_column_weight_scales_its_normal_scores_and_leaves_gamma_alone() -> None:
    X, _ = _data()
    columns = KernelBasis.usable_columns(X)
    plain = KernelBasis(n_landmarks=64).fit(X, columns, 0)
    weights = np.where(columns == 9, 3.0, 1.0)
    weighted = KernelBasis(n_landmarks=64).fit(X, columns, 0, weights=weights)
    unweighted = plain.transform(X)
    np.testing.assert_array_equal(weighted.transform(X), unweighted * weights)
    assert weighted.gamma_ == plain.gamma_
    # A basis pickled before weights existed has no `weights_`: it transforms as unweighted.
    del plain.weights_
    np.testing.assert_array_equal(plain.transform(X), unweighted)
    with pytest.raises(ValueError, match="weights"):
        KernelBasis().fit(X, columns, 0, weights=np.zeros(columns.size))
