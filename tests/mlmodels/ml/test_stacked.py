"""mlmodels.ml.stacked: the members' trees as one multi-target booster or compiled arrays, same outputs."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from mlmodels.ml import ensemble, stacked
from mlmodels.ml.ensemble import BootstrapEnsemble
from mlmodels.ml.stacked import compile_trees, stack_boosters

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
    assert model not in ensemble._compiled and model not in ensemble._stacked  # small blocks never build them
    big = model.predict_members(pool)
    assert ensemble._compiled.get(model) is not None  # the big block took the compiled walk
    assert model not in ensemble._stacked
    np.testing.assert_array_equal(big, small)


def test_the_compiled_walk_gives_each_members_output_bit_for_bit() -> None:
    X, y = _data(300)
    model = BootstrapEnsemble(smooth_weight=0.0, random_state=3, **FAST).fit(X, y)
    pool, _ = _data(5000, seed=1)
    compiled = compile_trees(model.members_)
    assert compiled is not None and compiled.depth == 4
    got = compiled.predict(pool, workers=2)
    assert got.shape == (5, 5000)
    for i, member in enumerate(model.members_):
        np.testing.assert_array_equal(got[i], member.inplace_predict(pool))


def test_the_compiled_walk_matches_on_split_values_missing_values_and_infinities() -> None:
    # Rows whose values sit exactly on the trees' thresholds (x < split goes left, equal goes
    # right), missing everywhere (every default side), and +-inf.
    X, y = _data(300)
    members = [
        xgb.train({"max_depth": 3, "seed": s, "subsample": 0.8}, xgb.DMatrix(X, label=y), num_boost_round=12)
        for s in range(3)
    ]
    compiled = compile_trees(members)
    assert compiled is not None
    splits = compiled.threshold[~np.isnan(compiled.threshold)]
    rng = np.random.default_rng(9)
    on_split = rng.choice(splits, size=(400, X.shape[1])).astype(np.float32)
    edge = np.array([np.nan, np.inf, -np.inf], dtype=np.float32)[rng.integers(0, 3, size=(300, X.shape[1]))]
    mixed = np.where(rng.random((300, X.shape[1])) < 0.3, np.nan, on_split[:300])
    pool = np.vstack([on_split, edge, mixed, np.full((1, X.shape[1]), np.nan, dtype=np.float32)])
    got = compiled.predict(pool, workers=1)
    for i, member in enumerate(members):
        np.testing.assert_array_equal(got[i], member.inplace_predict(pool))


def test_trees_of_different_depths_and_single_leaf_trees_compile_exactly() -> None:
    X, y = _data(200)
    # lossguide with a leaf budget grows unbalanced trees; a huge gamma leaves the root alone.
    uneven = [
        xgb.train({"grow_policy": "lossguide", "max_depth": 0, "max_leaves": 9, "seed": s}, xgb.DMatrix(X, label=y),
                  num_boost_round=8)
        for s in range(2)
    ]
    stumps = [xgb.train({"gamma": 1e9, "seed": s}, xgb.DMatrix(X, label=y), num_boost_round=3) for s in range(2)]
    pool, _ = _data(3000, seed=8)
    for members in (uneven, stumps):
        compiled = compile_trees(members)
        assert compiled is not None
        got = compiled.predict(pool)
        for i, member in enumerate(members):
            np.testing.assert_array_equal(got[i], member.inplace_predict(pool))
    assert compile_trees(stumps).depth == 0


def test_what_the_walk_cannot_reproduce_is_left_to_xgboost(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _data(200)
    depth4 = [xgb.train({"max_depth": 4, "seed": s}, xgb.DMatrix(X, label=y), num_boost_round=3) for s in range(2)]
    assert compile_trees(depth4) is not None
    monkeypatch.setattr(stacked, "MAX_COMPILED_DEPTH", 3)
    assert compile_trees(depth4) is None  # padding would cost 2**depth leaves a tree
    monkeypatch.undo()
    logistic = [xgb.train({"objective": "binary:logistic", "seed": s}, xgb.DMatrix(X, label=y > 1), num_boost_round=4)
                for s in range(2)]
    assert compile_trees(logistic) is None  # an output transform: the stacked booster keeps it exact
    compiled = compile_trees([xgb.train({}, xgb.DMatrix(X, label=y), num_boost_round=2) for _ in range(2)])
    with pytest.raises(ValueError, match="X must be"):
        compiled.predict(X[:, :5])


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
    assert model._compiled_trees() is None


def test_binary_classifiers_stack_and_give_the_same_probabilities() -> None:
    X, y = _data(300)
    labels = (y > np.median(y)).astype(int)
    model = BootstrapEnsemble(task="classification", n_classes=2, random_state=2, **FAST).fit(X, labels)
    pool, _ = _data(ensemble.STACK_MIN_ROWS + 10, seed=6)
    small = np.concatenate([model.predict_members(pool[s : s + 100]) for s in range(0, pool.shape[0], 100)], axis=1)
    assert model not in ensemble._stacked
    big = model.predict_members(pool)
    assert ensemble._stacked.get(model) is not None  # binary:logistic: stacked, not compiled
    assert model._compiled_trees() is None
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
