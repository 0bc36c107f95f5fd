"""Chart axes read like a lab notebook: round steps, whole numbers where counts are plotted."""

import pytest

from config.charts import line_chart, nice_ticks


@pytest.mark.parametrize(
    ("lo", "hi", "integer", "ticks"),
    [
        (0.0, 1.0, False, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (299.0, 310.0, False, [300.0, 302.5, 305.0, 307.5, 310.0]),
        (299.0, 310.0, True, [300.0, 305.0, 310.0]),  # was 300, 302.5 (shown "302"), 305 …
        (0.0, 3.0, True, [0.0, 1.0, 2.0, 3.0]),
        (40.0, 2000.0, True, [500.0, 1000.0, 1500.0, 2000.0]),
    ],
)
def test_nice_ticks(lo, hi, integer, ticks):  # type: ignore[no-untyped-def]
    assert nice_ticks(lo, hi, integer=integer) == ticks


def test_a_learning_curve_labels_its_label_counts_with_whole_numbers():  # type: ignore[no-untyped-def]
    svg = line_chart(points=[(300, 0.62), (304, 0.61), (309, 0.6)], x_label="training labels", y_label="RMSE",
                     point_labels=["v1", "v2", "v3"], better="lower")
    assert ">302<" not in svg and ">302.5<" not in svg and ">305<" in svg
