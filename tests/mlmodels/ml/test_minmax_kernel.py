"""The MinMax-kernel part of regression members (count fingerprints): mlmodels.ml.smooth.MinMaxBasis."""

from __future__ import annotations

import numpy as np
import pytest

from mlmodels.ml.ensemble import BootstrapEnsemble
from mlmodels.ml.explain import explain_smiles
from mlmodels.ml.features import FeatureSpec, featurize_smiles
from mlmodels.ml.smooth import MinMaxBasis

from .chem_data import SMILES

FAST = {"n_members": 4, "n_estimators": 25, "learning_rate": 0.2, "max_depth": 3}


def _counts(seed: int = 0, n: int = 120, d: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """d count columns (mostly 0-3, a few larger) + 3 continuous descriptors."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.8, size=(n, d)).astype(np.float32)
    counts[::17, 0] = 9
    desc = rng.normal(size=(n, 3)).astype(np.float32)
    y = counts[:, :4].sum(axis=1) * 0.3 + desc[:, 0] + rng.normal(0, 0.05, n)
    return np.hstack([counts, desc]), y


def _brute(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0], b.shape[0]))
    for i, x in enumerate(a):
        for j, z in enumerate(b):
            union = np.maximum(x, z).sum()
            out[i, j] = np.minimum(x, z).sum() / union if union else 0.0
    return out


def test_the_kernel_is_sum_of_min_over_sum_of_max_of_the_count_columns() -> None:
    X, _ = _counts()
    basis = MinMaxBasis(n_landmarks=30).fit(X, 16, seed=0)
    assert basis.landmark_levels_[0].shape == (30, 16)
    K = basis.kernel(X)
    # Each landmark is one of the rows: its column of K has a 1 where that row is.
    counts = X[:, :16].astype(np.float64)
    for j in range(30):
        assert np.isclose(K[:, j], 1.0).any()
    # Hand computation against the landmarks recovered from the kernel's own 1s.
    rows = [int(np.flatnonzero(np.isclose(K[:, j], 1.0))[0]) for j in range(30)]
    np.testing.assert_allclose(K, _brute(counts, counts[rows]), atol=1e-12)
    np.testing.assert_allclose(basis.gram(), _brute(counts[rows], counts[rows]), atol=1e-12)
    # Descriptor columns never enter: changing them changes nothing.
    X2 = X.copy()
    X2[:, 16:] += 5.0
    np.testing.assert_array_equal(basis.kernel(X2), K)


def test_on_bits_it_is_tanimoto_and_two_empty_rows_share_nothing() -> None:
    a = np.array([[1, 1, 0, 0], [1, 0, 1, 1], [0, 0, 0, 0]], dtype=np.float32)
    basis = MinMaxBasis(n_landmarks=3).fit(a, 4, seed=0)
    K = basis.kernel(a)
    order = np.argsort(basis.landmark_sum_)  # landmarks are a shuffle of the 3 rows
    assert K[2].tolist() == [0.0, 0.0, 0.0]
    assert sorted(K[0].tolist()) == pytest.approx([0.0, 0.25, 1.0])  # |{0}| / |{0,1,2,3}|
    assert basis.landmark_sum_[order].tolist() == [0.0, 2.0, 3.0]


def test_a_kernel_row_does_not_depend_on_the_block_it_is_computed_in() -> None:
    X, _ = _counts(1, 200)
    basis = MinMaxBasis(n_landmarks=50).fit(X, 16, seed=2)
    full = basis.kernel(X)
    np.testing.assert_array_equal(full[37:41], basis.kernel(X[37:41]))


def test_members_mix_trees_descriptor_kernel_and_count_kernel_by_their_weights() -> None:
    X, y = _counts()
    model = BootstrapEnsemble(smooth_weight=0.3, count_weight=0.3, count_columns=16, **FAST).fit(X, y)
    assert model.basis_ is not None and model.count_basis_ is not None
    assert model.smooth_share == pytest.approx(0.6)
    trees = np.stack([model._member_regress(m, X) for m in model.members_])
    rbf = model.smooth_coef_ @ model.basis_.kernel(X).T + model.smooth_intercept_[:, None]
    mm = model.count_coef_ @ model.count_basis_.kernel(X).T + model.count_intercept_[:, None]
    np.testing.assert_allclose(model.predict(X).members, 0.4 * trees + 0.3 * rbf + 0.3 * mm, rtol=1e-4, atol=1e-4)
    again = BootstrapEnsemble(smooth_weight=0.3, count_weight=0.3, count_columns=16, **FAST).fit(X, y)
    np.testing.assert_array_equal(model.predict(X).members, again.predict(X).members)


def test_count_part_alone_and_bad_settings() -> None:
    X, y = _counts()
    only = BootstrapEnsemble(smooth_weight=0.0, count_weight=0.5, count_columns=16, **FAST).fit(X, y)
    assert only.basis_ is None and only.count_basis_ is not None and only.smooth_share == 0.5
    assert only.predict(X).std.max() > 0
    with pytest.raises(ValueError, match="count_columns"):
        BootstrapEnsemble(count_weight=0.3, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="count_weight"):
        BootstrapEnsemble(smooth_weight=0.6, count_weight=0.5, count_columns=16, **FAST).fit(X, y)


def test_an_ensemble_saved_before_count_parts_existed_predicts_as_before() -> None:
    X, y = _counts()
    model = BootstrapEnsemble(**FAST).fit(X, y)
    before = model.predict(X).members
    # A format-2 artifact: no count part.
    del model.count_basis_, model.count_coef_, model.count_intercept_
    np.testing.assert_array_equal(model.predict(X).members, before)


def test_explanations_with_a_count_part_still_add_up(logs: np.ndarray) -> None:
    spec = FeatureSpec(name="counts+ap+props", morgan="counts", n_bits=512, atom_pairs=256, descriptors="props")
    X = featurize_smiles(SMILES, spec)
    model = BootstrapEnsemble(
        smooth_weight=0.3, count_weight=0.3, count_columns=768, colsample_bytree=1.0, **FAST
    ).fit(X, logs)
    smiles = "CC(=O)Nc1ccc(O)cc1"
    ex = explain_smiles(model, spec, smiles)
    mean = float(model.predict(featurize_smiles([smiles], spec)).mean[0])
    total = ex.base_value + sum(ex.atom_weights) + ex.descriptor_contribution + ex.absent_bits_contribution
    assert total == pytest.approx(mean, abs=1e-3)
