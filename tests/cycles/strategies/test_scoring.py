"""The array scoring functions, on hand-made inputs whose answers are known."""

import math

import numpy as np
import pytest

from cycles.strategies import (
    ModelOutputs,
    bald_scores,
    entropy_scores,
    expected_improvement_scores,
    gaussian_entropy_scores,
    greedy_scores,
    least_confidence_scores,
    margin_scores,
    min_max_normalize,
    ratio_scores,
    threshold_margin_scores,
    top_k,
    ucb_scores,
    uncertainty_scores,
)

PROBA = np.array(
    [
        [0.9, 0.05, 0.05],
        [0.4, 0.4, 0.2],
        [1 / 3, 1 / 3, 1 / 3],
        [0.6, 0.3, 0.1],
    ]
)


def test_entropy_is_zero_for_a_sure_prediction_and_log_k_for_a_uniform_one():
    ent = entropy_scores(np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]))
    assert ent == pytest.approx([0.0, math.log(3)])


def test_classification_uncertainty_is_entropy_normalised_to_one():
    unc = uncertainty_scores(ModelOutputs("classification", proba=PROBA))
    assert unc[2] == pytest.approx(1.0)
    assert unc.max() <= 1.0 + 1e-12
    assert np.argsort(-unc).tolist() == np.argsort(-entropy_scores(PROBA)).tolist()


def test_regression_uncertainty_is_the_ensemble_std():
    std = np.array([0.1, 0.5, 0.2])
    assert uncertainty_scores(ModelOutputs("regression", mean=np.zeros(3), std=std)) == pytest.approx(std)


def test_margin_is_one_minus_gap_between_the_two_most_likely_classes():
    assert margin_scores(PROBA) == pytest.approx([1 - 0.85, 1.0, 1.0, 1 - 0.3])


def test_least_confidence_and_ratio():
    assert least_confidence_scores(PROBA) == pytest.approx([0.1, 0.6, 2 / 3, 0.4])
    assert ratio_scores(PROBA) == pytest.approx([0.05 / 0.9, 1.0, 1.0, 0.5])


def test_binary_probabilities_given_as_a_vector_are_two_classes():
    outputs = ModelOutputs("classification", proba=np.array([0.5, 0.9, 0.1]))
    assert outputs.proba.shape == (3, 2)
    assert margin_scores(outputs.proba) == pytest.approx([1.0, 0.2, 0.2])


def test_regression_margin_is_highest_on_the_threshold():
    scores = threshold_margin_scores(np.array([1.0, 5.0, 4.0, 9.0]), 5.0)
    assert np.argsort(-scores, kind="stable").tolist() == [1, 2, 0, 3]


def test_bald_is_high_where_members_disagree_and_zero_where_they_agree():
    members = np.array(
        [
            # compound 0: members agree on 50/50 (aleatoric, nothing to learn)
            # compound 1: members contradict each other; compound 2: all sure and agreeing
            [[0.5, 0.5], [1.0, 0.0], [0.99, 0.01]],
            [[0.5, 0.5], [0.0, 1.0], [0.99, 0.01]],
        ]
    )
    bald = bald_scores(members)
    assert bald[0] == pytest.approx(0.0, abs=1e-9)
    assert bald[1] == pytest.approx(math.log(2))
    assert bald[2] == pytest.approx(0.0, abs=1e-9)
    # Entropy alone cannot tell compound 0 from compound 1.
    assert entropy_scores(members.mean(axis=0))[:2] == pytest.approx([math.log(2)] * 2)


def test_gaussian_entropy_grows_with_std_and_survives_zero():
    ent = gaussian_entropy_scores(np.array([0.0, 0.1, 1.0]))
    assert np.all(np.isfinite(ent))
    assert ent[0] < ent[1] < ent[2]
    assert ent[2] == pytest.approx(0.5 * math.log(2 * math.pi * math.e))


def test_greedy_and_ucb_follow_the_direction():
    mean = np.array([1.0, 3.0, 2.0])
    std = np.array([2.0, 0.0, 0.1])
    assert greedy_scores(mean, "maximize").argmax() == 1
    assert greedy_scores(mean, "minimize").argmax() == 0
    # mean + 2 std: [5, 3, 2.2]; minimising: -(mean - 2 std) = [3, -3, -1.8]
    assert ucb_scores(mean, std, 2.0, "maximize") == pytest.approx([5.0, 3.0, 2.2])
    assert ucb_scores(mean, std, 2.0, "minimize") == pytest.approx([3.0, -3.0, -1.8])
    assert ucb_scores(mean, std, 0.0, "maximize").argmax() == 1


def test_expected_improvement_matches_the_closed_form_and_the_direction():
    mean = np.array([1.0, 0.0, -1.0, 2.0])
    std = np.array([1.0, 1.0, 1.0, 0.0])
    ei = expected_improvement_scores(mean, std, best_observed=0.0, xi=0.0, direction="maximize")
    # EI(mu=1, sigma=1, best=0) = Phi(1) + phi(1)
    assert ei[0] == pytest.approx(0.8413447 + 0.2419707, abs=1e-6)
    assert ei[1] == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert ei[3] == pytest.approx(2.0)  # no spread: exactly the improvement
    assert np.all(ei >= 0)
    ei_min = expected_improvement_scores(mean, std, best_observed=0.0, xi=0.0, direction="minimize")
    assert ei_min[2] == pytest.approx(ei[0])
    assert ei_min[3] == 0.0
    assert np.argmax(ei_min) == 2


def test_min_max_normalize_maps_to_unit_interval_and_constant_to_zero():
    assert min_max_normalize(np.array([2.0, 4.0, 3.0])) == pytest.approx([0.0, 1.0, 0.5])
    assert min_max_normalize(np.array([7.0, 7.0])) == pytest.approx([0.0, 0.0])


def test_top_k_orders_best_first_and_breaks_ties_by_lower_index():
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1, 0.5])
    assert top_k(scores, 3).tolist() == [1, 3, 0]
    assert top_k(scores, 4).tolist() == [1, 3, 0, 2]
    assert top_k(scores, 10).tolist() == [1, 3, 0, 2, 5, 4]
    eligible = np.array([True, False, True, True, True, True])
    assert top_k(scores, 2, eligible).tolist() == [3, 0]


def test_top_k_agrees_with_a_full_stable_sort_on_many_ties():
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 5, size=2000).astype(float)
    expected = np.lexsort((np.arange(2000), -scores))[:137]
    assert top_k(scores, 137).tolist() == expected.tolist()
