"""greedy_sampling (GSx / GSy / iGS, Wu, Lin & Huang 2019) on hand-checkable pools.

Fingerprints here are hand-made 64-bit packed arrays, so every Tanimoto is exact:
a compound with bits {0..4} against a labeled one with bits {0..9} shares 5 of 10
bits (Tanimoto 0.5, distance 0.5).
"""

import numpy as np
import pytest

from cycles.strategies import (
    STRATEGIES,
    ModelOutputs,
    StrategyError,
    greedy_sampling_pair_distances,
    greedy_sampling_scores,
    select,
)


def bits(*ranges: range) -> np.ndarray:
    """One packed 64-bit (8-byte) fingerprint with the given bits set."""
    row = np.zeros(64, dtype=np.uint8)
    for r in ranges:
        row[list(r)] = 1
    return np.packbits(row)


LABELED = bits(range(10))  # measured value 0.0
A = bits(range(5))  # Tanimoto 0.5 to LABELED -> distance 0.5
B = bits(range(9))  # Tanimoto 0.9 -> distance 0.1
C = bits(range(20, 30))  # Tanimoto 0 -> distance 1.0


def pool(mean: list[float], fps: list[np.ndarray], **kwargs) -> ModelOutputs:  # type: ignore[no-untyped-def]
    defaults = {
        "labeled_fingerprints": np.stack([LABELED]),
        "labeled_values": np.array([0.0]),
    }
    return ModelOutputs(
        "regression",
        mean=np.array(mean),
        std=np.full(len(mean), 0.5),
        fingerprints=np.stack(fps),
        **{**defaults, **kwargs},
    )


def test_each_variant_measures_its_own_distance():
    # Predictions: A 3.0, B 10.0, C 1.2 (the one labeled compound measured 0.0).
    outputs = pool([3.0, 10.0, 1.2], [A, B, C])
    # gsx: 1 - Tanimoto = 0.5, 0.1, 1.0 -> C, the compound least like anything labeled.
    gsx = select("greedy_sampling", outputs, 1, params={"variant": "gsx"})
    assert gsx.scores == pytest.approx([0.5, 0.1, 1.0])
    assert gsx.indices.tolist() == [2]
    # gsy: |predicted - measured| = 3.0, 10.0, 1.2 -> B, the most unusual prediction.
    gsy = select("greedy_sampling", outputs, 1, params={"variant": "gsy"})
    assert gsy.scores == pytest.approx([3.0, 10.0, 1.2])
    assert gsy.indices.tolist() == [1]
    # igs (default): the product 1.5, 1.0, 1.2 -> A, neither the farthest nor the most unusual.
    igs = select("greedy_sampling", outputs, 1)
    assert igs.params["variant"] == "igs"
    assert igs.scores == pytest.approx([1.5, 1.0, 1.2])
    assert igs.indices.tolist() == [0]
    assert igs.components[0]["gs_distance"] == pytest.approx(1.5)
    assert igs.components[0]["gs_distance_to_labeled"] == pytest.approx(1.5)


def test_igs_takes_the_minimum_of_the_product_over_labeled_compounds():
    # Two labeled compounds: LABELED (value 0) and C (value 4). Pool compound A is
    # 0.5 from LABELED (|3 - 0| = 3 -> 1.5) and 1.0 from C (|3 - 4| = 1 -> 1.0): 1.0.
    # Neither min distance (0.5) times min value gap (1) = 0.5 would be right.
    outputs = pool(
        [3.0], [A], labeled_fingerprints=np.stack([LABELED, C]), labeled_values=np.array([0.0, 4.0])
    )
    assert select("greedy_sampling", outputs, 1).scores == pytest.approx([1.0])


def test_gsx_picks_the_farthest_point_and_then_spreads_the_batch():
    # Two copies of C are the farthest from LABELED; top-2 would take both. After the
    # first pick its twin is at distance 0, so greedy sampling takes A (0.5) next.
    outputs = pool([0.0, 0.0, 0.0, 0.0], [B, C, A, C])
    sel = select("greedy_sampling", outputs, 2, params={"variant": "gsx"})
    assert sel.indices.tolist() == [1, 2]
    assert [c["gs_distance"] for c in sel.components] == pytest.approx([1.0, 0.5])


def test_gsy_counts_a_picked_compound_with_its_prediction():
    # Labeled value 0; predictions 5.0, 5.1, 2.6. First pick 5.1; then 5.0 is only 0.1
    # from that pick while 2.6 is still 2.5 away: the batch is [5.1, 2.6], not [5.1, 5.0].
    outputs = pool([5.0, 5.1, 2.6], [A, A, A])
    sel = select("greedy_sampling", outputs, 2, params={"variant": "gsy"})
    assert sel.indices.tolist() == [1, 2]
    assert [c["gs_distance"] for c in sel.components] == pytest.approx([5.1, 2.5])


def test_igs_one_dimensional_batch_by_hand():
    # All pool fingerprints equal A (distance 0.5 to LABELED, 0 to each other), so after
    # the first pick every other candidate's iGS distance to it is 0 * |dy| = 0 and ties
    # go to the lowest index. With the labeled set alone: 0.5 * |y| -> 1.0, 2.0, 1.5.
    outputs = pool([2.0, 4.0, 3.0], [A, A, A])
    sel = select("greedy_sampling", outputs, 3)
    assert sel.indices.tolist() == [1, 0, 2]
    assert [c["gs_distance"] for c in sel.components] == pytest.approx([2.0, 0.0, 0.0])


def test_excluded_compounds_are_never_picked_and_ties_go_to_the_lower_index():
    outputs = pool([0.0, 0.0, 0.0], [C, C, A])
    sel = select("greedy_sampling", outputs, 2, params={"variant": "gsx"}, exclude=np.array([0]))
    assert sel.indices.tolist() == [1, 2]
    assert not sel.eligible[0]
    # A batch larger than the eligible pool returns every eligible compound.
    assert select("greedy_sampling", outputs, 10, exclude=np.array([0])).indices.size == 2


def test_scores_in_blocks_equal_the_brute_force_minimum():
    rng = np.random.default_rng(0)
    n, n_labeled = 2100, 1100  # more than one block of pool rows and of labeled rows
    fps = np.packbits(rng.random((n, 64)) < 0.3, axis=1)
    labeled = np.packbits(rng.random((n_labeled, 64)) < 0.3, axis=1)
    mean, values = rng.normal(size=n), rng.normal(size=n_labeled)
    for variant in ("igs", "gsx", "gsy"):
        blocked = greedy_sampling_scores(variant, fps, mean, labeled, values)
        brute = greedy_sampling_pair_distances(variant, fps, mean, labeled, values).min(axis=1)
        np.testing.assert_allclose(blocked, brute)


def test_bad_inputs_are_refused_naming_the_parameter():
    outputs = pool([1.0, 2.0], [A, B])
    with pytest.raises(StrategyError) as err:
        select("greedy_sampling", outputs, 1, params={"variant": "gsz"})
    assert err.value.param == "variant"
    with pytest.raises(StrategyError) as err:
        select("greedy_sampling", outputs, 1, params={"batch": "ranked_batch"})
    assert err.value.param == "batch"
    with pytest.raises(StrategyError) as err:
        select("greedy_sampling", pool([1.0], [A], labeled_values=None), 1)
    assert err.value.param == "labeled_values"
    # gsx needs no values, gsy no fingerprints.
    assert select("greedy_sampling", pool([1.0], [A], labeled_values=None), 1, params={"variant": "gsx"})
    with pytest.raises(StrategyError) as err:
        select("greedy_sampling", pool([1.0], [A], labeled_fingerprints=None), 1)
    assert err.value.param == "labeled_fingerprints"
    with pytest.raises(StrategyError) as err:
        select(
            "greedy_sampling",
            pool([1.0], [A], labeled_fingerprints=np.zeros((0, 8), np.uint8), labeled_values=np.zeros(0)),
            1,
        )
    assert err.value.param == "labeled_fingerprints"
    with pytest.raises(StrategyError) as err:
        pool([1.0], [A], labeled_values=np.array([0.0, 1.0]))
    assert err.value.param == "labeled_values"
    with pytest.raises(StrategyError) as err:
        pool([1.0], [A], labeled_values=np.array([np.nan]))
    assert err.value.param == "labeled_values"
    with pytest.raises(StrategyError) as err:
        select("greedy_sampling", ModelOutputs("classification", proba=np.array([[0.5, 0.5]])), 1)
    assert err.value.param == "strategy"


def test_is_registered_as_a_regression_model_improvement_strategy():
    info = STRATEGIES["greedy_sampling"]
    assert info.goal == "improve"
    assert info.tasks == ("regression",)
    assert info.params == {"variant": "igs"}
    assert set(info.requires["regression"]) == {"mean", "fingerprints", "labeled_fingerprints", "labeled_values"}
