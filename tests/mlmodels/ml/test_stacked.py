"""mlmodels.ml.stacked: the members' trees as one multi-target booster, same outputs."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from mlmodels.ml import ensemble
from mlmodels.ml.ensemble import BootstrapEnsemble
from mlmodels.ml.stacked import stack_boosters

FAST = {"n_members": 5, "n_estimators": 30, "learning_rate": 0.2, "max_depth": 4}


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12)).astype(np.float32)
    X[:, :6] = X[:, :6] > 0.3  # bit-like columns
    X[rng.random(n) < 0.05, 8] = np.nan  # missing descriptor values take the default branch
    y = X[:, 0] * 2 + np.sin(X[:, 7]) + np.nan_to_num(X[:, 8]) + rng.normal(0, 0.1, n)
    return X, y


def test_the_stacked_booster_gives_each_members_output_bit_for_bit() -> None:
    X, y = _data(300)
    model = BootstrapEnsemble(smooth_weight=0.0, random_state=3, **FAST).fit(X, y)
    pool, _ = _data(5000, seed=1)
    stacked = stack_boosters(model.members_, nthread=2)
    assert stacked is not None
    got = stacked.inplace_predict(pool)
    assert got.shape == (5000, 5)
    for i, member in enumerate(model.members_):
        np.testing.assert_array_equal(got[:, i], member.inplace_predict(pool))


def test_predictions_do_not_depend_on_the_path_a_block_takes() -> None:
    # Blocks of >= STACK_MIN_ROWS rows go through the stacked booster, smaller ones
    # member by member: a compound's score must not depend on its block.
    X, y = _data(300)
    model = BootstrapEnsemble(random_state=5, **FAST).fit(X, y)
    pool, _ = _data(ensemble.STACK_MIN_ROWS + 10, seed=2)
    small = np.concatenate([model.predict_members(pool[s : s + 100]) for s in range(0, pool.shape[0], 100)], axis=1)
    assert model not in ensemble._stacked  # small blocks never build it
    big = model.predict_members(pool)
    assert ensemble._stacked.get(model) is not None  # the big block took the stacked path
    np.testing.assert_array_equal(big, small)


def test_members_that_cannot_be_stacked_exactly_are_left_alone() -> None:
    X, y = _data(200)
    a = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=y), num_boost_round=5)
    b = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=y), num_boost_round=6)
    assert stack_boosters([a, b], nthread=1) is None  # different rounds
    assert stack_boosters([a], nthread=1) is None  # nothing to share
    forest = xgb.train({"max_depth": 2, "num_parallel_tree": 3}, xgb.DMatrix(X, label=y), num_boost_round=5)
    assert stack_boosters([a, forest], nthread=1) is None
    logistic = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=y > 1), num_boost_round=5)
    assert stack_boosters([a, logistic], nthread=1) is None
    assert stack_boosters([a, "not a booster"], nthread=1) is None


@pytest.mark.parametrize("algorithm", ["rf", "mlp"])
def test_other_algorithms_predict_member_by_member(algorithm: str) -> None:
    X, y = _data(200)
    model = BootstrapEnsemble(algorithm=algorithm, n_members=2, random_state=0).fit(X, y)
    pool, _ = _data(ensemble.STACK_MIN_ROWS, seed=4)
    assert model.predict_members(pool).shape == (2, pool.shape[0])
    assert model._stacked_trees() is None


def test_binary_classifiers_stack_and_give_the_same_probabilities() -> None:
    X, y = _data(300)
    labels = (y > np.median(y)).astype(int)
    model = BootstrapEnsemble(task="classification", n_classes=2, random_state=2, **FAST).fit(X, labels)
    pool, _ = _data(ensemble.STACK_MIN_ROWS + 10, seed=6)
    small = np.concatenate([model.predict_members(pool[s : s + 100]) for s in range(0, pool.shape[0], 100)], axis=1)
    assert model not in ensemble._stacked
    big = model.predict_members(pool)
    assert ensemble._stacked.get(model) is not None
    np.testing.assert_array_equal(big, small)  # members one by one below the threshold
    np.testing.assert_allclose(big.sum(axis=2), 1.0, rtol=1e-6)


def test_multiclass_and_one_class_members_predict_member_by_member() -> None:
    X, y = _data(300)
    three = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    model = BootstrapEnsemble(task="classification", n_classes=3, random_state=2, **FAST).fit(X, three)
    pool, _ = _data(ensemble.STACK_MIN_ROWS, seed=7)
    assert model.predict_members(pool).shape == (5, pool.shape[0], 3)
    assert model._stacked_trees() is None  # multi:softprob members are not stacked
    # A binary assay whose training labels are all one class has constant members.
    one_class = BootstrapEnsemble(task="classification", n_classes=2, random_state=0, n_members=3,
                                  n_estimators=5).fit(X, np.zeros(300, dtype=int))
    probabilities = one_class.predict_members(pool)
    assert one_class._stacked_trees() is None
    assert (probabilities[:, :, 0] == 1.0).all()
