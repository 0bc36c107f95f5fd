from __future__ import annotations

import numpy as np
import pytest

from compounds.chemistry import tanimoto_matrix
from mlmodels.ml.applicability import applicability_distance, max_tanimoto, nearest_training


def test_a_training_compound_has_distance_zero(packed: np.ndarray) -> None:
    train = packed[:10]
    distance = applicability_distance(train, train)
    np.testing.assert_allclose(distance, 0.0, atol=1e-6)


def test_a_dissimilar_compound_is_farther_than_a_close_analogue(packed: np.ndarray) -> None:
    train = packed[:4]  # ethanol .. pentanol
    distance = applicability_distance(packed, train)
    hexanol_like = distance[3]  # in the training set
    caffeine = distance[13]
    assert hexanol_like == pytest.approx(0.0, abs=1e-6)
    assert caffeine > 0.8
    assert distance[4] > 0.5  # benzene shares nothing with aliphatic alcohols


def _float32_reference(pool: np.ndarray, train: np.ndarray) -> np.ndarray:
    """The whole pool x train similarity matrix in float32, as the kernel computes each entry."""
    a, b = np.unpackbits(pool, axis=1).astype(np.float32), np.unpackbits(train, axis=1).astype(np.float32)
    inter = a @ b.T  # exact: whole numbers <= 2048
    union = a.sum(axis=1, dtype=np.float32)[:, None] + b.sum(axis=1, dtype=np.float32)[None, :] - inter
    return inter / np.maximum(union, np.float32(1.0))


def test_it_equals_brute_force_tanimoto(packed: np.ndarray) -> None:
    pool, train = packed[5:], packed[:8]
    expected = tanimoto_matrix(pool, train).max(axis=1)
    np.testing.assert_allclose(max_tanimoto(pool, train), expected, atol=1e-6)
    idx, sim = nearest_training(pool, train)
    np.testing.assert_array_equal(idx, tanimoto_matrix(pool, train).argmax(axis=1))
    np.testing.assert_allclose(sim, expected, atol=1e-6)


def test_threads_split_the_pool_without_changing_a_value() -> None:
    # Random sparse fingerprints, enough rows for several threads, with ties
    # (duplicated training rows) and an empty pool and training fingerprint.
    rng = np.random.default_rng(7)
    bits = rng.random((9000, 2048)) < 0.02
    bits[0] = False
    pool = np.packbits(bits[:8500], axis=1)
    train = np.packbits(np.concatenate([bits[8500:], bits[8500:8510], bits[:1]]), axis=1)
    sims = _float32_reference(pool, train)
    one_idx, one_sim = nearest_training(pool, train, workers=1)
    np.testing.assert_array_equal(one_sim, sims.max(axis=1))  # bit for bit, not approximately
    np.testing.assert_array_equal(one_idx, sims.argmax(axis=1))  # first of equals
    for workers in (2, 3):
        idx, sim = nearest_training(pool, train, workers=workers)
        np.testing.assert_array_equal(sim, one_sim)
        np.testing.assert_array_equal(idx, one_idx)
    assert one_sim[0] == 0.0  # empty vs anything (incl. the empty training row): 0, not NaN


def test_an_empty_training_set_puts_everything_out_of_domain(packed: np.ndarray) -> None:
    np.testing.assert_array_equal(applicability_distance(packed, packed[:0]), 1.0)
    idx, sim = nearest_training(packed, packed[:0])
    assert (idx == -1).all() and (sim == 0.0).all()
    assert applicability_distance(packed[:0], packed).shape == (0,)


def test_it_refuses_unpacked_fingerprints(packed: np.ndarray) -> None:
    with pytest.raises(ValueError, match="packed"):
        applicability_distance(np.unpackbits(packed, axis=1), packed)
