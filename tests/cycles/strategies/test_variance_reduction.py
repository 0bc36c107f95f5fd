"""variance_reduction: greedy V-optimal design with the model's descriptor kernel (and its column weights).

The Nyström form with every row a landmark is the exact Gaussian process, so its
picks are checked against a brute-force n x n posterior covariance, conditioned one
pick at a time.
"""

import numpy as np
import pytest

from cycles.strategies import STRATEGIES, ModelOutputs, StrategyError, select
from mlmodels.ml.smooth import KernelBasis


def features(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Descriptor-like columns (many distinct values) beside a few bits the kernel ignores.
    return np.hstack([rng.normal(size=(n, 6)), rng.integers(0, 2, size=(n, 3))]).astype(np.float32)


def outputs(pool: np.ndarray, labeled: np.ndarray | None) -> ModelOutputs:
    return ModelOutputs("regression", mean=np.zeros(pool.shape[0]), features=pool, labeled_features=labeled)


def brute_force_picks(
    pool: np.ndarray,
    labeled: np.ndarray,
    k: int,
    noise: float,
    gamma: float,
    weights: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    pool_share: float = 1.0,
    members: np.ndarray | None = None,
    target_members: np.ndarray | None = None,
    ensemble_weight: float = 0.0,
    target_weights: np.ndarray | None = None,
) -> list[int]:
    """Exact GP: the same kernel (fit on pool + labeled [+ target] rows), covariance over
    all of them; the objective is pool_share x the pool's mean variance + the rest x the targets'."""
    rows = np.vstack([pool, labeled] + ([] if targets is None else [targets]))
    columns = KernelBasis.usable_columns(rows)
    basis = KernelBasis(n_landmarks=10_000, gamma=gamma).fit(
        rows, columns, seed=0, weights=None if weights is None else weights[columns]
    )
    T = basis.transform(rows)
    d = (T * T).sum(1)[:, None] + (T * T).sum(1)[None, :] - 2 * T @ T.T
    S = np.exp(-basis.gamma_ * np.maximum(d, 0))

    def condition(j: int) -> None:
        s = S[:, j].copy()
        S[:] -= np.outer(s, s) / (s[j] + noise)

    n, n_labeled = pool.shape[0], labeled.shape[0]
    for j in range(n, n + n_labeled):
        condition(j)
    if ensemble_weight:
        # The members' covariance over pool and targets (labeled rows: none, they are known),
        # scaled to ensemble_weight x the posterior's mean variance over the pool.
        m = np.zeros((members.shape[0], S.shape[0]))
        m[:, :n] = members
        if target_members is not None:
            m[:, n + n_labeled :] = target_members
        dev = m - m.mean(axis=0)
        E = dev.T @ dev / m.shape[0]
        S += ensemble_weight * np.diag(S)[:n].mean() / np.diag(E)[:n].mean() * E
    picks: list[int] = []
    for _ in range(k):
        P = S[:n, :n]
        reduction = pool_share * (P**2).mean(axis=0)
        if targets is not None:
            wt = np.ones(targets.shape[0]) if target_weights is None else target_weights
            reduction += (1 - pool_share) * (wt[:, None] * S[n + n_labeled :, :n] ** 2).sum(axis=0) / wt.sum()
        gain = reduction / (np.diag(P) + noise)
        gain[picks] = -np.inf
        j = int(np.argmax(gain))
        picks.append(j)
        condition(j)
    return picks


@pytest.mark.parametrize("noise", [0.1, 1.0])
def test_the_batch_is_the_exact_gaussian_process_design(noise: float):
    pool, labeled = features(60, seed=1), features(8, seed=2)
    chosen = select("variance_reduction", outputs(pool, labeled), 6,
                    params={"noise": noise, "landmarks": 4096}, random_state=0)
    assert chosen.indices.tolist() == brute_force_picks(pool, labeled, 6, noise, gamma=0.2)
    # The first pick's score is its exact variance reduction, averaged over the pool.
    assert chosen.components[0]["variance_reduction_in_batch"] == pytest.approx(chosen.scores[chosen.indices[0]])


def test_labels_already_held_steer_the_design_elsewhere():
    rng = np.random.default_rng(3)
    # Two equal clusters of descriptor vectors; every labeled compound sits in cluster 0.
    centres = np.array([[-3.0] * 6, [3.0] * 6])
    pool = np.vstack([centres[i] + 0.3 * rng.normal(size=(40, 6)) for i in (0, 1)]).astype(np.float32)
    labeled = (centres[0] + 0.3 * rng.normal(size=(30, 6))).astype(np.float32)
    without = select("variance_reduction", outputs(pool, None), 4, random_state=0)
    with_labels = select("variance_reduction", outputs(pool, labeled), 4, random_state=0)
    # With no labels the batch covers both clusters; with cluster 0 labeled it goes to cluster 1.
    assert {int(i) // 40 for i in without.indices} == {0, 1}
    assert all(int(i) >= 40 for i in with_labels.indices)
    assert with_labels.scores[40:].mean() > with_labels.scores[:40].mean()


def test_uncertainty_power_spends_the_design_where_the_ensemble_is_unsure():
    rng = np.random.default_rng(4)
    centres = np.array([[-3.0] * 6, [3.0] * 6])
    pool = np.vstack([centres[i] + 0.3 * rng.normal(size=(40, 6)) for i in (0, 1)]).astype(np.float32)
    std = np.r_[np.full(40, 0.01), np.full(40, 1.0)]  # the ensemble is sure about cluster 0
    out = ModelOutputs("regression", mean=np.zeros(80), std=std, features=pool)
    plain = select("variance_reduction", out, 4, random_state=0)
    weighted = select("variance_reduction", out, 4, params={"uncertainty_power": 2.0}, random_state=0)
    assert {int(i) // 40 for i in plain.indices} == {0, 1}
    assert all(int(i) >= 40 for i in weighted.indices)
    with pytest.raises(StrategyError) as err:
        select("variance_reduction", out, 4, params={"uncertainty_power": -1.0})
    assert err.value.param == "uncertainty_power"


def test_excluded_compounds_are_never_picked_and_picks_are_distinct():
    pool = features(50)
    exclude = np.zeros(50, dtype=bool)
    exclude[::2] = True
    chosen = select("variance_reduction", outputs(pool, features(5, seed=9)), 20, exclude=exclude, random_state=0)
    assert len(set(chosen.indices.tolist())) == 20
    assert not exclude[chosen.indices].any()
    # More than is left: every eligible compound, once.
    everything = select("variance_reduction", outputs(pool, None), 40, exclude=exclude, random_state=0)
    assert sorted(everything.indices.tolist()) == list(range(1, 50, 2))


def test_the_design_weighs_columns_as_the_models_kernel_does():
    pool, labeled = features(60, seed=1), features(8, seed=2)
    # As a model with a prior weighs its prior's columns: here the first descriptor, 4x.
    weights = np.ones(pool.shape[1])
    weights[0] = 4.0
    out = ModelOutputs("regression", mean=np.zeros(60), features=pool, labeled_features=labeled, feature_weights=weights)
    weighted = select("variance_reduction", out, 6, params={"landmarks": 4096}, random_state=0)
    assert weighted.indices.tolist() == brute_force_picks(pool, labeled, 6, 0.1, gamma=0.2, weights=weights)
    # model_kernel false: every column counts once, as without weights.
    plain = select("variance_reduction", out, 6, params={"landmarks": 4096, "model_kernel": False}, random_state=0)
    assert plain.indices.tolist() == brute_force_picks(pool, labeled, 6, 0.1, gamma=0.2)
    assert plain.indices.tolist() != weighted.indices.tolist()


@pytest.mark.parametrize(("target", "share"), [("validation", 0.0), ("both", 0.5)])
def test_a_design_aimed_at_the_validation_compounds_is_the_exact_design_for_them(target: str, share: float):
    pool, labeled = features(60, seed=1), features(8, seed=2)
    # The compounds the model is measured on sit off to one side of the pool.
    targets = features(15, seed=3) + np.r_[np.full(6, 1.5), np.zeros(3)].astype(np.float32)
    out = ModelOutputs("regression", mean=np.zeros(60), features=pool, labeled_features=labeled, target_features=targets)
    aimed = select("variance_reduction", out, 6, params={"landmarks": 4096, "target": target}, random_state=0)
    assert aimed.indices.tolist() == brute_force_picks(
        pool, labeled, 6, 0.1, gamma=0.2, targets=targets, pool_share=share
    )
    assert aimed.params["target"] == target
    # The default designs over the pool alone, and picks other compounds.
    plain = select("variance_reduction", out, 6, params={"landmarks": 4096}, random_state=0)
    assert plain.indices.tolist() == brute_force_picks(pool, labeled, 6, 0.1, gamma=0.2)
    assert plain.indices.tolist() != aimed.indices.tolist()
    if target == "validation":
        # Aimed at the targets, the batch comes from their side of the pool.
        assert pool[aimed.indices, :6].sum(axis=1).mean() > pool[plain.indices, :6].sum(axis=1).mean()


def test_a_validation_target_needs_the_validation_compounds():
    pool = features(20)
    for value in ("test", ["validation"], None):
        with pytest.raises(StrategyError) as err:
            select("variance_reduction", outputs(pool, None), 2, params={"target": value})
        assert err.value.param == "target"
    # A model without a validation set (or an empty one) has nothing to aim at.
    for targets in (None, np.zeros((0, 9), dtype=np.float32)):
        out = ModelOutputs("regression", mean=np.zeros(20), features=pool, target_features=targets)
        with pytest.raises(StrategyError) as err:
            select("variance_reduction", out, 2, params={"target": "both"})
        assert err.value.param == "target" and "validation compounds" in err.value.message
    with pytest.raises(StrategyError) as err:
        ModelOutputs("regression", mean=np.zeros(20), features=pool, target_features=features(4)[:, :5])
    assert err.value.param == "target_features"
    # uncertainty_power weighs the validation compounds by the members' spread over them: without
    # the members' predictions of them it is refused, with them it runs.
    aimed = ModelOutputs("regression", mean=np.zeros(20), std=np.ones(20), features=pool, target_features=features(5))
    for target in ("validation", "both"):
        with pytest.raises(StrategyError) as err:
            select("variance_reduction", aimed, 2, params={"target": target, "uncertainty_power": 1.0})
        assert err.value.param == "uncertainty_power"
    with_members = ModelOutputs("regression", mean=np.zeros(20), std=np.ones(20), features=pool,
                                target_features=features(5), target_members=np.ones((10, 5)))
    assert len(select("variance_reduction", with_members, 2, params={"target": "both", "uncertainty_power": 1.0})
               .indices) == 2


@pytest.mark.parametrize("weights", [np.ones(4), np.r_[np.ones(8), 0.0], np.r_[np.ones(8), np.nan]])
def test_feature_weights_are_one_positive_number_per_column(weights: np.ndarray):
    with pytest.raises(StrategyError) as err:
        ModelOutputs("regression", mean=np.zeros(20), features=features(20), feature_weights=weights)
    assert err.value.param == "feature_weights"


def test_it_needs_the_feature_matrix_and_sane_parameters():
    pool = features(20)
    with pytest.raises(StrategyError) as err:
        select("variance_reduction", ModelOutputs("regression", mean=np.zeros(20)), 2)
    assert err.value.param == "features"
    for param, value in (
        ("noise", 0), ("gamma", -1.0), ("landmarks", 3), ("landmarks", "many"), ("model_kernel", "yes")
    ):
        with pytest.raises(StrategyError) as err:
            select("variance_reduction", outputs(pool, None), 2, params={param: value})
        assert err.value.param == param
    with pytest.raises(StrategyError) as err:
        select("variance_reduction", outputs(pool, features(4)[:, :5]), 2)
    assert err.value.param == "labeled_features"
    # Bits only (a fingerprint model): the bits are the coordinates.
    bits_only = np.random.default_rng(0).integers(0, 2, size=(20, 8)).astype(np.float32)
    assert len(set(select("variance_reduction", outputs(bits_only, None), 4).indices.tolist())) == 4
    # Nothing varies: nothing to design over.
    with pytest.raises(StrategyError) as err:
        select("variance_reduction", outputs(np.ones((20, 8), dtype=np.float32), None), 2)
    assert err.value.param == "features"
    # Label-free, so it serves classification models as well.
    assert STRATEGIES["variance_reduction"].tasks == ("regression", "classification")
    proba = np.full((20, 3), 1 / 3)
    cls = ModelOutputs("classification", proba=proba, features=pool)
    assert len(select("variance_reduction", cls, 3, random_state=0).indices) == 3


def test_missing_descriptors_are_allowed_as_in_the_model():
    pool = features(30)
    pool[3, 0] = np.nan
    chosen = select("variance_reduction", outputs(pool, None), 5, random_state=0)
    assert np.isfinite(chosen.scores).all()


def test_a_big_pool_picks_from_its_best_initial_gains(monkeypatch):
    from cycles import strategies

    pool = features(200, seed=5)
    out = outputs(pool, features(10, seed=6))
    full = select("variance_reduction", out, 3, random_state=0)
    monkeypatch.setattr(strategies, "_DESIGN_CANDIDATES", 25)  # limit = max(25, 10 x 3 = 30) = 30
    capped = select("variance_reduction", out, 3, random_state=0)
    top30 = set(np.argsort(-capped.scores, kind="stable")[:30].tolist())
    assert set(capped.indices.tolist()) <= top30
    assert capped.indices[0] == full.indices[0] == int(np.argmax(full.scores))
    np.testing.assert_array_equal(capped.scores, full.scores)


@pytest.mark.parametrize(("target", "share"), [("pool", 1.0), ("validation", 0.0)])
def test_ensemble_weight_adds_the_members_covariance_to_the_exact_design(target: str, share: float):
    pool, labeled, targets = features(60, seed=1), features(8, seed=2), features(15, seed=3)
    rng = np.random.default_rng(5)
    members = rng.normal(size=(10, 60))
    target_members = rng.normal(size=(10, 15))
    # Members that disagree in step on pool compound 7 and every target: where a design aimed
    # at the targets should go first, when the members' covariance counts enough.
    members[:, 7] = target_members[:, :].mean(axis=1) * 3 + rng.normal(size=10) * 0.01
    target_members += (members[:, 7] / 3)[:, None] * 2
    out = ModelOutputs(
        "regression", mean=np.zeros(60), members=members, features=pool, labeled_features=labeled,
        target_features=targets, target_members=target_members,
    )
    params = {"landmarks": 4096, "target": target, "ensemble_weight": 2.0}
    chosen = select("variance_reduction", out, 6, params=params, random_state=0)
    aimed = target != "pool"  # a pool design leaves the targets out of its kernel, too
    assert chosen.indices.tolist() == brute_force_picks(
        pool, labeled, 6, 0.1, gamma=0.2, targets=targets if aimed else None, pool_share=share,
        members=members, target_members=target_members if aimed else None, ensemble_weight=2.0,
    )
    plain = select("variance_reduction", out, 6, params={**params, "ensemble_weight": 0.0}, random_state=0)
    assert chosen.indices.tolist() != plain.indices.tolist()
    if target == "validation":
        assert chosen.indices[0] == 7


def test_ensemble_weight_needs_a_regression_models_members():
    pool = features(30)
    out = ModelOutputs("regression", mean=np.zeros(30), features=pool, target_features=features(5, seed=3))
    for params in ({"ensemble_weight": 1.0}, {"ensemble_weight": -1.0}, {"ensemble_weight": "1"}):
        with pytest.raises(StrategyError) as err:
            select("variance_reduction", out, 4, params=params)
        assert err.value.param in ("ensemble_weight", "members")
    members = np.random.default_rng(0).normal(size=(10, 30))
    with_members = ModelOutputs("regression", mean=np.zeros(30), members=members, features=pool,
                                target_features=features(5, seed=3))
    # Aimed at the validation compounds, their members' predictions are needed too.
    with pytest.raises(StrategyError) as err:
        select("variance_reduction", with_members, 4, params={"ensemble_weight": 1.0, "target": "validation"})
    assert err.value.param == "ensemble_weight"
    # Arrays that do not line up are refused when the outputs are built.
    with pytest.raises(StrategyError) as err:
        ModelOutputs("regression", mean=np.zeros(30), members=members[:, :20], features=pool)
    assert err.value.param == "outputs"
    with pytest.raises(StrategyError) as err:
        ModelOutputs("regression", mean=np.zeros(30), members=members, features=pool,
                     target_features=features(5, seed=3), target_members=np.zeros((10, 4)))
    assert err.value.param == "target_members"
    proba = np.full((30, 2), 0.5)
    with pytest.raises(StrategyError) as err:
        select("variance_reduction", ModelOutputs("classification", proba=proba, features=pool), 4,
               params={"ensemble_weight": 1.0})
    assert err.value.param == "ensemble_weight"


def test_uncertainty_power_weighs_the_validation_compounds_by_the_members_spread():
    pool, labeled = features(60, seed=1), features(8, seed=2)
    targets = features(15, seed=3)
    rng = np.random.default_rng(6)
    # The members disagree a lot over the first five validation compounds only.
    target_members = rng.normal(size=(10, 15)) * np.r_[np.full(5, 2.0), np.full(10, 0.1)]
    out = ModelOutputs("regression", mean=np.zeros(60), features=pool, labeled_features=labeled,
                       target_features=targets, target_members=target_members)
    params = {"landmarks": 4096, "target": "validation", "uncertainty_power": 2.0}
    chosen = select("variance_reduction", out, 6, params=params, random_state=0)
    weights = target_members.std(axis=0) ** 2
    assert chosen.indices.tolist() == brute_force_picks(
        pool, labeled, 6, 0.1, gamma=0.2, targets=targets, pool_share=0.0, target_weights=weights
    )
    plain = select("variance_reduction", out, 6, params={**params, "uncertainty_power": 0.0}, random_state=0)
    assert chosen.indices.tolist() != plain.indices.tolist()
