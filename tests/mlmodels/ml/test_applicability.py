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


def test_it_equals_brute_force_tanimoto_and_ignores_chunking(packed: np.ndarray) -> None:
    pool, train = packed[5:], packed[:8]
    expected = tanimoto_matrix(pool, train).max(axis=1)
    np.testing.assert_allclose(max_tanimoto(pool, train), expected, atol=1e-6)
    np.testing.assert_allclose(max_tanimoto(pool, train, chunk=3), expected, atol=1e-6)
    idx, sim = nearest_training(pool, train, chunk=4)
    np.testing.assert_array_equal(idx, tanimoto_matrix(pool, train).argmax(axis=1))
    np.testing.assert_allclose(sim, expected, atol=1e-6)


def test_an_empty_training_set_puts_everything_out_of_domain(packed: np.ndarray) -> None:
    np.testing.assert_array_equal(applicability_distance(packed, packed[:0]), 1.0)


def test_it_refuses_unpacked_fingerprints(packed: np.ndarray) -> None:
    with pytest.raises(ValueError, match="packed"):
        applicability_distance(np.unpackbits(packed, axis=1), packed)
