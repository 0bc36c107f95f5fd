"""A warm-up schedule: another strategy picks until the model has `until_labeled` labels.

Same hand-made 64-bit fingerprints as test_greedy_sampling: with one labeled compound
(bits 0..9, measured 0.0), greedy sampling (igs) picks A and uncertainty picks B.
"""

import numpy as np
import pytest

from cycles.strategies import ModelOutputs, StrategyError, select

from .test_greedy_sampling import LABELED, A, B, C

WARMUP = {"strategy": "greedy_sampling", "until_labeled": 2}


def outputs(n_labeled: int) -> ModelOutputs:
    # igs distances: A 0.5 x 3.0 = 1.5, B 0.1 x 10.0 = 1.0, C 1.0 x 1.2 = 1.2 -> A;
    # std: B is the most uncertain.
    return ModelOutputs(
        "regression",
        mean=np.array([3.0, 10.0, 1.2]),
        std=np.array([0.1, 0.9, 0.2]),
        fingerprints=np.stack([A, B, C]),
        labeled_fingerprints=np.stack([LABELED] * n_labeled),
        labeled_values=np.zeros(n_labeled),
    )


def test_the_warm_up_strategy_picks_while_labels_are_fewer_than_until_labeled():
    sel = select("uncertainty", outputs(1), 1, params={"warmup": WARMUP})
    assert sel.indices.tolist() == [0]  # greedy sampling's pick, not uncertainty's B
    assert sel.strategy == "uncertainty"  # recorded under the strategy asked for
    assert sel.params["stage"] == "warmup"
    assert sel.params["picked_by"] == "greedy_sampling"
    assert sel.params["warmup"]["params"]["variant"] == "igs"  # the warm-up's resolved params
    assert sel.components[0]["picked_by"] == "greedy_sampling"
    assert sel.components[0]["gs_distance_to_labeled"] == pytest.approx(1.5)


def test_the_strategy_itself_picks_from_until_labeled_on():
    sel = select("uncertainty", outputs(2), 1, params={"warmup": WARMUP})
    assert sel.indices.tolist() == [1]
    assert "stage" not in sel.params
    assert "picked_by" not in sel.components[0]
    assert sel.params["warmup"] == {**WARMUP, "params": {}}


def test_the_outer_batch_mode_applies_after_the_warm_up_only():
    # ranked_batch is not valid for greedy_sampling (it builds its own batch); during
    # the warm-up only the warm-up's own params count.
    params = {"batch": "ranked_batch", "warmup": WARMUP}
    assert select("uncertainty", outputs(1), 2, params=params).indices.tolist() == [0, 2]
    after = select("uncertainty", outputs(2), 2, params=params)
    plain = select("uncertainty", outputs(2), 2, params={"batch": "ranked_batch"})
    assert after.indices.tolist() == plain.indices.tolist()
    assert [c["ranked_score"] for c in after.components] == [c["ranked_score"] for c in plain.components]


def test_excluded_compounds_stay_excluded_during_the_warm_up():
    sel = select("uncertainty", outputs(1), 1, params={"warmup": WARMUP}, exclude=np.array([0]))
    assert sel.indices.tolist() == [2]


@pytest.mark.parametrize(
    ("warmup", "message"),
    [
        ("greedy_sampling", "must be a mapping"),
        ({"strategy": "greedy_sampling"}, "until_labeled must be an integer"),
        ({"strategy": "greedy_sampling", "until_labeled": 0}, "until_labeled must be an integer"),
        ({"strategy": "greedy_sampling", "until_labeled": True}, "until_labeled must be an integer"),
        ({"strategy": "nope", "until_labeled": 5}, "unknown warm-up strategy"),
        ({"strategy": "uncertainty", "until_labeled": 5}, "must differ"),
        ({"strategy": "uncertainty", "until_labeled": 5, "params": {"alpha": 0.5}}, "must differ"),
        ({"strategy": "least_confidence", "until_labeled": 5}, "classification models only"),
        ({"strategy": "random", "until_labeled": 5, "when": 1}, "unknown key"),
        ({"strategy": "random", "until_labeled": 5, "params": [1]}, "params must be a mapping"),
        ({"strategy": "random", "until_labeled": 5, "params": {"warmup": WARMUP}}, "warm-up of its own"),
    ],
)
def test_a_bad_schedule_names_the_warmup_parameter(warmup, message):  # type: ignore[no-untyped-def]
    with pytest.raises(StrategyError, match=message) as err:
        select("uncertainty", outputs(1), 1, params={"warmup": warmup})
    assert err.value.param == "warmup"


def test_a_bad_warm_up_parameter_is_named_inside_the_schedule():
    with pytest.raises(StrategyError) as err:
        select("uncertainty", outputs(1), 1, params={"warmup": {**WARMUP, "params": {"variant": "xyz"}}})
    assert err.value.param == "warmup.variant"


def test_a_schedule_needs_the_labeled_compounds_to_count_them():
    plain = ModelOutputs("regression", mean=np.zeros(3), std=np.ones(3))
    with pytest.raises(StrategyError, match="labeled_fingerprints") as err:
        select("uncertainty", plain, 1, params={"warmup": {"strategy": "random", "until_labeled": 5}})
    assert err.value.param == "warmup"


def test_the_same_strategy_with_other_settings_is_a_schedule():
    # greedy_sampling's gsy variant picks by |predicted - measured| alone: B (10.0), not igs's A.
    params = {"variant": "gsy", "warmup": {**WARMUP, "params": {"variant": "igs"}}}
    during = select("greedy_sampling", outputs(1), 1, params=params)
    assert during.indices.tolist() == [0]
    assert during.params["picked_by"] == "greedy_sampling"
    assert during.params["warmup"]["params"]["variant"] == "igs"
    after = select("greedy_sampling", outputs(2), 1, params=params)
    assert after.indices.tolist() == [1]
    assert "stage" not in after.params
