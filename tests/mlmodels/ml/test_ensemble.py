from __future__ import annotations

import numpy as np
import pytest

from mlmodels.ml.ensemble import (
    BootstrapEnsemble,
    ClassificationPrediction,
    RegressionPrediction,
    predict_pool,
)
from mlmodels.ml.features import FeatureSpec, build_matrix

# Small and quick: these tests check behaviour, not accuracy.
FAST = {"n_members": 4, "n_estimators": 25, "learning_rate": 0.2, "max_depth": 3}


def _regression_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(120, 5)).astype(np.float32)
    y = 2 * X[:, 0] - X[:, 1] + rng.normal(0, 0.1, 120)
    return X, y


def _classification_data(k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(150, 4)).astype(np.float32)
    score = X[:, 0] + 0.5 * rng.normal(size=150)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, k + 1)[1:-1]))
    return X, y


def test_a_fixed_seed_gives_identical_predictions() -> None:
    X, y = _regression_data()
    a = BootstrapEnsemble(random_state=7, **FAST).fit(X, y).predict(X)
    b = BootstrapEnsemble(random_state=7, **FAST).fit(X, y).predict(X)
    c = BootstrapEnsemble(random_state=8, **FAST).fit(X, y).predict(X)
    assert isinstance(a, RegressionPrediction) and isinstance(c, RegressionPrediction)
    np.testing.assert_array_equal(a.members, b.members)
    assert not np.allclose(a.mean, c.mean)


def test_parallel_fitting_does_not_change_the_model() -> None:
    X, y = _regression_data()
    serial = BootstrapEnsemble(n_jobs=1, **FAST).fit(X, y).predict(X)
    parallel = BootstrapEnsemble(n_jobs=2, **FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(serial.mean, parallel.mean)


def test_regression_returns_mean_std_and_members() -> None:
    X, y = _regression_data()
    pred = BootstrapEnsemble(**FAST).fit(X, y).predict(X[:10])
    assert isinstance(pred, RegressionPrediction)
    assert pred.members is not None and pred.members.shape == (4, 10)
    np.testing.assert_allclose(pred.mean, pred.members.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(pred.std, pred.members.std(axis=0), rtol=1e-5)
    assert (pred.std > 0).all()


def test_std_is_larger_where_training_data_is_sparse_and_far() -> None:
    # 200 compounds in [0, 1] and only 6 out at [4, 6]: the bootstraps disagree on
    # the far region because each sees a different handful of its points.
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 1, 200), rng.uniform(4, 6, 6)])
    X = np.column_stack([x, rng.uniform(0, 1, x.size)]).astype(np.float32)
    y = x + rng.normal(0, 0.5, x.size)
    model = BootstrapEnsemble(n_members=5, n_estimators=30, learning_rate=0.2, random_state=0).fit(X, y)
    near = np.column_stack([np.linspace(0.1, 0.9, 20), np.full(20, 0.5)]).astype(np.float32)
    far = np.column_stack([np.linspace(4, 6, 20), np.full(20, 0.5)]).astype(np.float32)
    near_std = model.predict(near).std.mean()
    far_std = model.predict(far).std.mean()
    assert near_std > 0
    assert far_std > 2 * near_std


def test_chunked_prediction_equals_one_block() -> None:
    X, y = _regression_data()
    model = BootstrapEnsemble(**FAST).fit(X, y)
    whole = model.predict(X)
    model.chunk_size = 7
    chunked = model.predict(X)
    # The smooth part's kernel products are BLAS calls whose rounding depends on the
    # block shape: the smooth part is float64 so this is ~exact, but not promised bit for bit.
    np.testing.assert_allclose(whole.mean, chunked.mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(whole.members, chunked.members, rtol=1e-6, atol=1e-7)
    assert model.predict(X, return_members=False).members is None


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("algorithm", ["xgboost", "rf"])
def test_class_probabilities_sum_to_one(k: int, algorithm: str) -> None:
    X, y = _classification_data(k)
    model = BootstrapEnsemble(task="classification", algorithm=algorithm, **FAST).fit(X, y)
    pred = model.predict(X)
    assert isinstance(pred, ClassificationPrediction)
    assert pred.proba.shape == (150, k)
    np.testing.assert_allclose(pred.proba.sum(axis=1), 1.0, atol=1e-5)
    assert pred.member_proba is not None and pred.member_proba.shape == (4, 150, k)
    np.testing.assert_allclose(pred.member_proba.sum(axis=2), 1.0, atol=1e-5)
    np.testing.assert_array_equal(pred.labels, pred.proba.argmax(axis=1))
    # A fitted model beats chance on its own training data.
    assert np.mean(pred.labels == y) > 1.5 / k


def test_a_class_missing_from_a_member_still_gets_a_zero_column() -> None:
    X, y = _classification_data(2)
    model = BootstrapEnsemble(task="classification", n_classes=3, **FAST).fit(X, y)
    pred = model.predict(X)
    assert pred.proba.shape == (150, 3)
    np.testing.assert_array_equal(pred.proba[:, 2], 0.0)
    np.testing.assert_allclose(pred.proba.sum(axis=1), 1.0, atol=1e-5)


def test_a_rare_class_reaches_every_member_through_stratified_bootstraps() -> None:
    X, y = _classification_data(2)
    y = y.copy()
    y[0] = 2  # a single example of class 2: a plain bootstrap would miss it ~37 % of the time
    model = BootstrapEnsemble(task="classification", n_members=8, n_estimators=10).fit(X, y)
    assert all(2 in present for present in model.member_classes_)
    np.testing.assert_allclose(model.predict(X).proba.sum(axis=1), 1.0, atol=1e-5)


def test_a_single_class_training_set_predicts_that_class() -> None:
    X, _ = _classification_data(2)
    y = np.ones(X.shape[0], dtype=int)
    pred = BootstrapEnsemble(task="classification", n_classes=2, **FAST).fit(X, y).predict(X[:5])
    np.testing.assert_array_equal(pred.proba, [[0.0, 1.0]] * 5)


def test_mlp_members_handle_missing_values() -> None:
    X, y = _regression_data()
    X[::10, 2] = np.nan
    pred = BootstrapEnsemble(algorithm="mlp", n_members=2, hidden_layer_sizes=(8,)).fit(X, y).predict(X)
    assert np.isfinite(pred.mean).all()


def test_predict_pool_builds_x_per_chunk_like_build_matrix(packed: np.ndarray, logs: np.ndarray) -> None:
    spec = FeatureSpec(name="bits")
    X = build_matrix(spec, packed, None)
    model = BootstrapEnsemble(**FAST).fit(X, logs)
    pooled = predict_pool(model, spec, packed, None, chunk_size=6)
    np.testing.assert_allclose(pooled.mean, model.predict(X).mean, rtol=1e-6)


def test_it_refuses_bad_input() -> None:
    X, y = _regression_data()
    with pytest.raises(ValueError, match="algorithm"):
        BootstrapEnsemble(algorithm="svm").fit(X, y)
    model = BootstrapEnsemble(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])
    with pytest.raises(RuntimeError, match="not fitted"):
        BootstrapEnsemble().predict(X)
