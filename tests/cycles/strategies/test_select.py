"""select(): ranking, validation, filters, parameters and explanations, without a database."""

import numpy as np
import pytest

from cycles.strategies import (
    BATCH_MODES,
    COMMON_PARAMS,
    DEFAULT_HYBRID_WEIGHTS,
    STRATEGIES,
    ModelOutputs,
    Selection,
    StrategyError,
    select,
)


def regression(**kwargs) -> ModelOutputs:
    defaults = {
        "mean": np.array([1.0, 5.0, 3.0, 4.0, 2.0]),
        "std": np.array([0.3, 0.1, 0.9, 0.5, 0.2]),
        "applicability": np.array([0.1, 0.9, 0.2, 0.3, 0.8]),
    }
    return ModelOutputs("regression", **{**defaults, **kwargs})


def classification(**kwargs) -> ModelOutputs:
    defaults = {
        "proba": np.array(
            [
                [0.95, 0.05],
                [0.5, 0.5],
                [0.7, 0.3],
                [0.2, 0.8],
                [0.55, 0.45],
            ]
        ),
    }
    return ModelOutputs("classification", **{**defaults, **kwargs})


# --- ranking -------------------------------------------------------------------


def test_uncertainty_ranks_by_ensemble_std():
    sel = select("uncertainty", regression(), 3)
    assert isinstance(sel, Selection)
    assert sel.indices.tolist() == [2, 3, 0]
    assert sel.scores == pytest.approx([0.3, 0.1, 0.9, 0.5, 0.2])


def test_classification_strategies_rank_the_boundary_first():
    for strategy in ("uncertainty", "margin", "entropy", "least_confidence", "ratio"):
        assert select(strategy, classification(), 5).indices.tolist() == [1, 4, 2, 3, 0], strategy


def test_regression_margin_defaults_to_the_median_and_records_it():
    sel = select("margin", regression(), 2)
    assert sel.params["threshold"] == 3.0
    assert sel.indices.tolist() == [2, 3]  # 3.0 on the threshold; 4.0 and 2.0 tie, lower index wins
    sel = select("margin", regression(), 2, params={"threshold": 4.9})
    assert sel.indices.tolist() == [1, 3]


def test_ties_go_to_the_lower_index():
    outputs = regression(std=np.array([0.5, 0.7, 0.5, 0.7, 0.5]))
    assert select("uncertainty", outputs, 4).indices.tolist() == [1, 3, 0, 2]


def test_a_batch_larger_than_the_pool_returns_the_whole_pool_ranked():
    sel = select("uncertainty", regression(), 50)
    assert sel.indices.tolist() == [2, 3, 0, 4, 1]
    assert len(sel.components) == 5


def test_an_empty_pool_gives_an_empty_selection():
    empty = np.zeros(0)
    sel = select("uncertainty", ModelOutputs("regression", mean=empty, std=empty), 3)
    assert sel.indices.tolist() == [] and sel.components == []


def test_random_is_reproducible_with_a_seed_and_changes_with_it():
    outputs = regression(mean=np.zeros(200), std=np.ones(200), applicability=None)
    a = select("random", outputs, 10, random_state=1)
    b = select("random", outputs, 10, random_state=1)
    c = select("random", outputs, 10, random_state=2)
    assert a.indices.tolist() == b.indices.tolist()
    assert a.indices.tolist() != c.indices.tolist()
    assert len(set(a.indices.tolist())) == 10


def test_every_strategy_is_deterministic():
    rng = np.random.default_rng(3)
    n = 300
    proba = rng.dirichlet([1, 1, 1], size=n)
    members = rng.dirichlet([1, 1, 1], size=(4, n))
    reg = regression(
        mean=rng.normal(size=n),
        std=rng.random(n),
        applicability=rng.random(n),
        best_observed=1.0,
        # greedy_sampling measures distances to the labeled compounds.
        fingerprints=np.packbits(rng.random((n, 64)) < 0.3, axis=1),
        labeled_fingerprints=np.packbits(rng.random((40, 64)) < 0.3, axis=1),
        labeled_values=rng.normal(size=40),
        # variance_reduction designs over the model's input matrix.
        features=rng.normal(size=(n, 6)),
        labeled_features=rng.normal(size=(40, 6)),
    )
    cls = classification(proba=proba, member_proba=members, applicability=rng.random(n),
                         features=rng.normal(size=(n, 6)))
    for name, info in STRATEGIES.items():
        for outputs in (reg, cls):
            if outputs.task in info.tasks:
                first = select(name, outputs, 20, random_state=5)
                again = select(name, outputs, 20, random_state=5)
                assert first.indices.tolist() == again.indices.tolist(), name
                assert first.components == again.components, name


# --- hit finding: direction ----------------------------------------------------


def test_greedy_takes_the_best_prediction_in_the_assay_direction():
    assert select("greedy", regression(), 2).indices.tolist() == [1, 3]
    assert select("greedy", regression(direction="minimize"), 2).indices.tolist() == [0, 4]


def test_greedy_on_classification_uses_the_positive_class():
    assert select("greedy", classification(), 2).indices.tolist() == [3, 1]
    assert select("greedy", classification(), 2, params={"positive_class": 0}).indices.tolist() == [0, 2]
    with pytest.raises(StrategyError) as err:
        select("greedy", classification(), 2, params={"positive_class": 2})
    assert err.value.param == "positive_class"


def test_ucb_trades_mean_against_spread_toward_the_direction():
    outputs = regression(mean=np.array([1.0, 3.0, 2.0]), std=np.array([2.0, 0.0, 0.1]), applicability=None)
    assert select("ucb", outputs, 1).indices.tolist() == [0]  # 1 + 2*2 beats 3 + 0
    assert select("ucb", outputs, 1, params={"beta": 0.0}).indices.tolist() == [1]
    minimise = regression(
        mean=np.array([1.0, 3.0, 2.0]),
        std=np.array([0.0, 2.0, 0.1]),
        applicability=None,
        direction="minimize",
    )
    assert select("ucb", minimise, 1).indices.tolist() == [1]  # 3 - 2*2 = -1 is the lowest bound
    assert select("ucb", minimise, 1, params={"beta": 0.0}).indices.tolist() == [0]
    comps = select("ucb", minimise, 1).components[0]
    assert comps["bound"] == pytest.approx(-1.0)


def test_expected_improvement_follows_the_direction_and_needs_best_observed():
    mean = np.array([0.0, 2.0, -2.0])
    std = np.array([0.5, 0.5, 0.5])
    up = regression(mean=mean, std=std, applicability=None, best_observed=1.0)
    down = regression(mean=mean, std=std, applicability=None, best_observed=-1.0, direction="minimize")
    assert select("expected_improvement", up, 3).indices.tolist() == [1, 0, 2]
    assert select("expected_improvement", down, 3).indices.tolist() == [2, 0, 1]
    with pytest.raises(StrategyError) as err:
        select("expected_improvement", regression(), 1)
    assert err.value.param == "best_observed"


def test_find_strategies_are_marked_as_hit_finding():
    assert {n for n, info in STRATEGIES.items() if info.goal == "find"} == {
        "greedy",
        "ucb",
        "expected_improvement",
    }


# --- hybrid --------------------------------------------------------------------


def test_hybrid_weights_change_the_order():
    outputs = regression()
    by_uncertainty = select("hybrid", outputs, 1, params={"weights": {"uncertainty": 1.0}})
    by_applicability = select("hybrid", outputs, 1, params={"weights": {"applicability": 1.0}})
    by_margin = select("hybrid", outputs, 1, params={"weights": {"margin": 1.0}})
    assert by_uncertainty.indices.tolist() == [2]
    assert by_applicability.indices.tolist() == [1]
    assert by_margin.indices.tolist() == [2]
    assert select("hybrid", outputs, 5, params={"weights": {"uncertainty": 1.0}}).indices.tolist() == [
        2,
        3,
        0,
        4,
        1,
    ]
    mixed = select("hybrid", outputs, 5, params={"weights": {"uncertainty": 0.7, "applicability": 0.3}})
    # normalised std [.25, 0, 1, .5, .125] and applicability [0, 1, .125, .25, .875]
    # give [.175, .3, .7375, .425, .35]: the out-of-domain compounds 4 and 1 move up.
    assert mixed.indices.tolist() == [2, 3, 4, 1, 0]


def test_hybrid_default_weights_are_the_spec_ones_and_components_explain_the_score():
    sel = select("hybrid", regression(), 2)
    assert sel.params["weights"] == DEFAULT_HYBRID_WEIGHTS
    for comp in sel.components:
        expected = sum(DEFAULT_HYBRID_WEIGHTS[k] * comp[f"{k}_normalized"] for k in DEFAULT_HYBRID_WEIGHTS)
        assert comp["score"] == pytest.approx(expected)
        assert {"uncertainty", "margin", "applicability"} <= comp.keys()


@pytest.mark.parametrize(
    "weights",
    [
        {"uncertainty": -0.1, "margin": 1.0},
        {"uncertainty": 0.0, "margin": 0.0, "applicability": 0.0},
        {},
        {"novelty": 1.0},
        {"uncertainty": float("nan")},
        {"uncertainty": "lots"},
        [0.5, 0.5],
    ],
)
def test_hybrid_refuses_bad_weights(weights):
    with pytest.raises(StrategyError) as err:
        select("hybrid", regression(), 2, params={"weights": weights})
    assert err.value.param == "weights"


def test_hybrid_needs_applicability_only_when_it_is_weighted():
    with pytest.raises(StrategyError) as err:
        select("hybrid", classification(), 2)
    assert err.value.param == "applicability"
    sel = select("hybrid", classification(), 2, params={"weights": {"uncertainty": 1, "margin": 1}})
    assert sel.indices.tolist() == [1, 4]


# --- filters -------------------------------------------------------------------


def test_min_uncertainty_excludes_confident_compounds():
    sel = select("greedy", regression(), 5, params={"min_uncertainty": 0.25})
    assert sel.indices.tolist() == [3, 2, 0]  # 1 (std .1) and 4 (std .2) are too certain
    assert sel.eligible.tolist() == [True, False, True, True, False]


def test_min_uncertainty_on_classification_uses_normalised_entropy():
    sel = select("greedy", classification(), 5, params={"min_uncertainty": 0.95})
    assert sorted(sel.indices.tolist()) == [1, 4]


def test_min_uncertainty_needs_an_uncertainty():
    with pytest.raises(StrategyError) as err:
        select("greedy", regression(std=None), 2, params={"min_uncertainty": 0.1})
    assert err.value.param == "min_uncertainty"


def test_exclude_removes_labeled_or_pending_compounds():
    by_index = select("uncertainty", regression(), 5, exclude=np.array([2, 0]))
    assert by_index.indices.tolist() == [3, 4, 1]
    mask = np.array([False, False, True, False, False])
    assert select("uncertainty", regression(), 2, exclude=mask).indices.tolist() == [3, 0]
    with pytest.raises(StrategyError) as err:
        select("uncertainty", regression(), 2, exclude=np.array([7]))
    assert err.value.param == "exclude"


# --- components ----------------------------------------------------------------


def test_components_explain_every_chosen_compound():
    rng = np.random.default_rng(0)
    fps = rng.integers(0, 256, size=(5, 256), dtype=np.uint8)
    labeled = fps[[2]].copy()
    sel = select("uncertainty", regression(fingerprints=fps, labeled_fingerprints=labeled), 3)
    assert len(sel.components) == len(sel.indices) == 3
    for rank, (i, comp) in enumerate(zip(sel.indices, sel.components, strict=True)):
        assert comp["rank"] == rank
        assert comp["score"] == pytest.approx(sel.scores[i])
        assert comp["uncertainty"] == pytest.approx([0.3, 0.1, 0.9, 0.5, 0.2][i])
        assert comp["predicted"] == pytest.approx([1.0, 5.0, 3.0, 4.0, 2.0][i])
        assert {"applicability", "max_sim_to_labeled", "nearest_labeled"} <= comp.keys()
        assert all(isinstance(v, int | float) for v in comp.values())
    assert sel.components[0]["max_sim_to_labeled"] == pytest.approx(1.0)  # compound 2 is the labeled one


def test_classification_components_name_the_predicted_class():
    comp = select("margin", classification(), 1).components[0]
    assert comp["predicted_class"] == 0
    assert comp["margin"] == pytest.approx(1.0)
    assert comp["uncertainty"] == pytest.approx(1.0)


# --- validation ----------------------------------------------------------------


def test_unknown_strategy_is_refused_by_name():
    with pytest.raises(StrategyError) as err:
        select("clairvoyance", regression(), 2)
    assert err.value.param == "strategy"
    assert "clairvoyance" in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_batch_size_must_be_a_positive_integer(batch_size):
    with pytest.raises(StrategyError) as err:
        select("uncertainty", regression(), batch_size)
    assert err.value.param == "batch_size"


@pytest.mark.parametrize("field", ["mean", "std", "applicability"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_are_refused(field, bad):
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    values[3] = bad
    with pytest.raises(StrategyError) as err:
        regression(**{field: values})
    assert err.value.param == field


def test_bad_probabilities_are_refused():
    with pytest.raises(StrategyError) as err:
        classification(proba=np.array([[0.5, np.nan], [0.5, 0.5]]))
    assert err.value.param == "proba"
    with pytest.raises(StrategyError):
        classification(proba=np.array([[2.0, -1.0]]))  # logits, not probabilities
    with pytest.raises(StrategyError):
        classification(proba=np.array([[0.2, 0.2]]))  # does not sum to 1
    with pytest.raises(StrategyError) as err:
        classification(member_proba=np.full((2, 5, 2), np.nan))
    assert err.value.param == "member_proba"


def test_misaligned_arrays_and_bad_enums_are_refused():
    with pytest.raises(StrategyError) as err:
        regression(std=np.ones(4))
    assert err.value.param == "outputs"
    with pytest.raises(StrategyError) as err:
        classification(member_proba=np.full((2, 5, 3), 1 / 3))
    assert err.value.param == "member_proba"
    with pytest.raises(StrategyError) as err:
        regression(best_observed=float("nan"))
    assert err.value.param == "best_observed"
    with pytest.raises(StrategyError) as err:
        regression(direction="up")
    assert err.value.param == "direction"
    with pytest.raises(StrategyError) as err:
        ModelOutputs("ranking", mean=np.ones(2))
    assert err.value.param == "task"
    with pytest.raises(StrategyError) as err:
        regression(std=np.array([0.1, -0.1, 0.1, 0.1, 0.1]))
    assert err.value.param == "std"


def test_missing_required_outputs_are_named():
    with pytest.raises(StrategyError) as err:
        select("bald", classification(), 2)
    assert err.value.param == "member_proba"
    with pytest.raises(StrategyError) as err:
        select("uncertainty", regression(std=None), 2)
    assert err.value.param == "std"
    with pytest.raises(StrategyError) as err:
        select("uncertainty", regression(), 2, params={"batch": "diverse"})
    assert err.value.param == "fingerprints"


def test_strategies_refuse_a_task_they_do_not_support():
    for name in ("bald", "least_confidence", "ratio"):
        with pytest.raises(StrategyError) as err:
            select(name, regression(), 2)
        assert err.value.param == "strategy"
    for name in ("ucb", "expected_improvement"):
        with pytest.raises(StrategyError):
            select(name, classification(), 2)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"beta": 1.0}, "beta"),  # belongs to ucb, not uncertainty
        ({"batch": "spread"}, "batch"),
        ({"pool_factor": 0.5}, "pool_factor"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": "sometimes"}, "alpha"),
        ({"min_uncertainty": float("nan")}, "min_uncertainty"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, param):
    with pytest.raises(StrategyError) as err:
        select("uncertainty", regression(), 2, params=params)
    assert err.value.param == param


def test_ucb_and_ei_parameters_are_validated():
    with pytest.raises(StrategyError) as err:
        select("ucb", regression(), 2, params={"beta": -1})
    assert err.value.param == "beta"
    with pytest.raises(StrategyError) as err:
        select("expected_improvement", regression(best_observed=1.0), 2, params={"xi": "x"})
    assert err.value.param == "xi"


def test_registry_describes_every_strategy_and_its_defaults():
    assert {
        "uncertainty",
        "margin",
        "entropy",
        "random",
        "hybrid",
        "least_confidence",
        "ratio",
        "bald",
        "greedy",
        "ucb",
        "expected_improvement",
        "greedy_sampling",
    } <= STRATEGIES.keys()
    for name, info in STRATEGIES.items():
        assert info.name == name and info.description
        assert info.goal in ("improve", "find")
        assert set(info.requires) == set(info.tasks)
    assert STRATEGIES["ucb"].params == {"beta": 2.0}
    assert STRATEGIES["hybrid"].params["weights"] == DEFAULT_HYBRID_WEIGHTS
    assert set(BATCH_MODES) == {"top", "diverse", "ranked_batch", "class_balanced"}
    assert COMMON_PARAMS["batch"] == "top" and COMMON_PARAMS["pool_factor"] == 5


def test_resolved_params_are_recorded_and_defaults_are_not_shared():
    sel = select("hybrid", regression(), 2, params={"weights": {"uncertainty": 1.0}})
    assert sel.params["weights"] == {"uncertainty": 1.0, "margin": 0.0, "applicability": 0.0}
    assert sel.params["batch"] == "top"
    assert STRATEGIES["hybrid"].params["weights"] == DEFAULT_HYBRID_WEIGHTS
