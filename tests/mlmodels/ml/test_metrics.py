from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mlmodels.ml.metrics import (
    classification_metrics,
    expected_calibration_error,
    is_better,
    primary_metric,
    regression_metrics,
)


def test_regression_metrics_match_hand_computed_values() -> None:
    # errors 0, 0, 0, 1; mean of y is 2.5 so SS_tot = 5.
    m = regression_metrics([1, 2, 3, 4], [1, 2, 3, 5], y_std=[0.1, 0.1, 0.1, 0.5])
    assert m["n"] == 4
    assert m["rmse"] == pytest.approx(0.5)
    assert m["mae"] == pytest.approx(0.25)
    assert m["r2"] == pytest.approx(0.8)
    assert m["spearman"] == pytest.approx(1.0)
    # The only error is where std is largest; 1 > 1.96 * 0.5 so 3 of 4 are covered.
    assert m["uncertainty_spearman"] == pytest.approx(1.0)
    assert m["coverage_95"] == pytest.approx(0.75)
    assert m["mean_std"] == pytest.approx(0.2)


def test_undefined_regression_metrics_are_none_not_nan() -> None:
    m = regression_metrics([2, 2, 2], [1, 2, 3], y_std=[0, 0, 0])
    assert m["r2"] is None and m["spearman"] is None and m["uncertainty_spearman"] is None
    json.dumps(m, allow_nan=False)
    assert regression_metrics([], [])["rmse"] is None


def test_binary_classification_metrics_match_hand_computed_values() -> None:
    y = [0, 0, 1, 1]
    p1 = np.array([0.15, 0.4, 0.35, 0.8])
    m = classification_metrics(y, np.column_stack([1 - p1, p1]))
    # 3 of the 4 positive/negative pairs are ordered correctly.
    assert m["roc_auc"] == pytest.approx(0.75)
    # Ranked 0.8(+), 0.4(−), 0.35(+): AP = 0.5·1 + 0.5·2/3.
    assert m["pr_auc"] == pytest.approx(0.5 + 1 / 3)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    # class 0: P 2/3, R 1 → F1 0.8; class 1: P 1, R 0.5 → F1 2/3.
    assert m["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["log_loss"] == pytest.approx(
        -(math.log(0.85) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    )
    assert m["brier"] == pytest.approx((0.15**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4)
    # Each row alone in its bin: |1−0.85| + |1−0.6| + |0−0.65| + |1−0.8|, over 4.
    assert m["ece"] == pytest.approx((0.15 + 0.4 + 0.65 + 0.2) / 4)
    assert m["confusion_matrix"] == [[2, 0], [1, 1]]
    json.dumps(m, allow_nan=False)


def test_three_class_metrics_match_hand_computed_values() -> None:
    y = [0, 1, 2, 2]
    P = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]])
    m = classification_metrics(y, P)
    # One-vs-rest AUCs 1, 1 and 3.5/4 (one tie counts half).
    assert m["roc_auc"] == pytest.approx((1 + 1 + 0.875) / 3)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["log_loss"] == pytest.approx(-np.log([0.7, 0.5, 0.6, 0.3]).mean())
    assert m["brier"] == pytest.approx((0.14 + 0.38 + 0.26 + 0.74) / 4)
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_auc_is_none_when_only_one_class_is_present() -> None:
    m = classification_metrics([1, 1], np.array([[0.2, 0.8], [0.4, 0.6]]))
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["accuracy"] == pytest.approx(1.0)
    json.dumps(m, allow_nan=False)


def test_a_zero_probability_on_the_true_class_gives_a_finite_log_loss() -> None:
    m = classification_metrics([0, 1], np.array([[0.0, 1.0], [0.0, 1.0]]))
    assert m["log_loss"] is not None and math.isfinite(m["log_loss"])


def test_ece_is_zero_for_perfectly_calibrated_bins() -> None:
    # Confidence 0.75 in one bin with 3 of 4 right.
    P = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(np.array([0, 0, 0, 1]), P) == pytest.approx(0.0)


def test_primary_metric_and_direction() -> None:
    assert primary_metric("regression") == ("rmse", "lower")
    assert primary_metric("classification") == ("roc_auc", "higher")
    assert is_better("regression", 0.4, 0.5)
    assert not is_better("classification", 0.7, 0.8)
    assert is_better("classification", 0.7, None)
    assert not is_better("regression", None, 0.5)
    with pytest.raises(ValueError):
        primary_metric("ranking")


def test_coverage_curve_counts_values_inside_each_central_interval() -> None:
    from mlmodels.ml.metrics import coverage_curve

    # Errors of 0, 1 and 3 standard deviations: the 68.3 % interval (z = 1) holds two, the
    # 99 % interval (z = 2.576) still misses the third.
    curve = dict(coverage_curve([0.0, 1.0, 3.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], levels=(0.5, 0.6827, 0.99)))
    assert curve[0.5] == pytest.approx(1 / 3)  # z = 0.674: only the exact prediction
    assert curve[0.6827] == pytest.approx(2 / 3)
    assert curve[0.99] == pytest.approx(2 / 3)
    assert coverage_curve([], [], []) == []
