"""The physico-chemical prior: its data, its columns, its cache, and an ensemble that uses it."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen
from scipy.stats import spearmanr

from mlmodels.ml import ensemble as ensemble_module
from mlmodels.ml import physchem
from mlmodels.ml.artifacts import load_artifact, save_artifact
from mlmodels.ml.ensemble import BootstrapEnsemble
from mlmodels.ml.explain import explain_smiles
from mlmodels.ml.features import DEFAULT_SPEC, featurize_smiles

from .chem_data import SMILES

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
FAST = {"n_members": 3, "n_estimators": 30, "learning_rate": 0.2, "max_depth": 3}
OFFSET = DEFAULT_SPEC.n_bits  # DEFAULT_SPEC: 512 folded bits, then the "fast" descriptors


@pytest.fixture(scope="module")
def prior() -> physchem.PhyschemPrior:
    return physchem.load_prior()


@pytest.fixture(scope="module")
def melting_points() -> tuple[list[str], np.ndarray]:
    return physchem.training_data()


@pytest.fixture(scope="module")
def log_p_values() -> tuple[list[str], np.ndarray]:
    return physchem.log_p_training_data()


def _connectivity(smiles: str) -> str:
    return Chem.MolToInchiKey(Chem.MolFromSmiles(smiles)).split("-")[0]


def test_the_general_solubility_equation_by_hand() -> None:
    # 125 °C above room temperature costs 1.25 log units; a liquid's melting point costs nothing.
    got = physchem.gse_log_s(np.array([423.15, 250.0]), np.array([2.0, 1.0]))
    np.testing.assert_allclose(got, [0.5 - 1.25 - 2.0, 0.5 - 1.0], atol=1e-12)


def test_the_shipped_data_holds_no_compound_of_the_solubility_benchmark(
    melting_points: tuple[list[str], np.ndarray], log_p_values: tuple[list[str], np.ndarray]
) -> None:
    smiles, tm = melting_points
    assert len(smiles) > 10_000 and np.all((tm > 50) & (tm < 800))  # kelvin: propene 88, perylene dyes 766
    lp_smiles, lp = log_p_values
    assert len(lp_smiles) > 3_500 and np.all((lp > -6) & (lp < 13))
    with (SHARED / "solubility.csv").open(newline="") as fh:
        benchmark = {_connectivity(r["smiles"]) for r in csv.DictReader(fh)}
    assert benchmark.isdisjoint(_connectivity(s) for s in smiles)
    assert benchmark.isdisjoint(_connectivity(s) for s in lp_smiles)


def test_the_columns_are_the_learned_melting_point_and_log_p_and_the_gse_with_both(
    prior: physchem.PhyschemPrior,
) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    block = X[:, OFFSET : OFFSET + physchem.N_DESCRIPTORS]
    cols = prior.columns(X, OFFSET)
    assert cols.shape == (len(SMILES), 3) and prior.names == physchem.PRIOR_NAMES
    np.testing.assert_array_equal(cols[:, 0], prior.booster.inplace_predict(block))
    crippen = np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in SMILES])
    np.testing.assert_allclose(cols[:, 1], crippen + prior.log_p_booster.inplace_predict(block), atol=1e-4)
    np.testing.assert_allclose(cols[:, 2], physchem.gse_log_s(cols[:, 0], cols[:, 1]), atol=1e-4)
    augmented = prior.augment(X, OFFSET)
    np.testing.assert_array_equal(augmented[:, : X.shape[1]], X)
    np.testing.assert_array_equal(augmented[:, X.shape[1] :], cols)
    with pytest.raises(ValueError, match="descriptor columns"):
        prior.columns(X, X.shape[1] - 10)


def test_a_prior_pickled_before_the_log_p_booster_keeps_its_two_columns(prior: physchem.PhyschemPrior) -> None:
    """Models of the eleventh session pickled a MeltingPointPrior holding only `booster`."""
    old = physchem.MeltingPointPrior.__new__(physchem.MeltingPointPrior)
    old.__dict__["booster"] = prior.booster  # what unpickling such an artifact restores
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    cols = old.columns(X, OFFSET)
    assert old.names == physchem.MELTING_POINT_ONLY_NAMES and cols.shape == (len(SMILES), 2)
    crippen = np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in SMILES])
    np.testing.assert_array_equal(cols[:, 0], prior.columns(X, OFFSET)[:, 0])
    np.testing.assert_allclose(cols[:, 1], physchem.gse_log_s(cols[:, 0], crippen), atol=1e-4)
    assert old.augment(X, OFFSET).shape == (len(SMILES), X.shape[1] + 2)


def test_the_log_p_booster_corrects_crippen_on_measured_values(
    prior: physchem.PhyschemPrior, log_p_values: tuple[list[str], np.ndarray]
) -> None:
    """A wrong descriptor block, or the correction added to the wrong column, would make
    the learned log P worse than Crippen's instead of better."""
    smiles, lp = log_p_values
    pick = np.random.default_rng(0).choice(len(smiles), 200, replace=False)
    X = featurize_smiles([smiles[i] for i in pick], DEFAULT_SPEC)
    learned = prior.columns(X, OFFSET)[:, 1]
    crippen = X[:, OFFSET + physchem.descriptor_names(physchem.DESCRIPTORS).index("MolLogP")]
    err_learned = np.sqrt(np.mean((learned - lp[pick]) ** 2))
    err_crippen = np.sqrt(np.mean((crippen - lp[pick]) ** 2))
    assert err_learned < 0.8 * err_crippen


def test_the_booster_orders_melting_points_it_learned(
    prior: physchem.PhyschemPrior, melting_points: tuple[list[str], np.ndarray]
) -> None:
    """A wrong descriptor block or order would leave the booster guessing (ρ ≈ 0)."""
    smiles, tm = melting_points
    pick = np.random.default_rng(0).choice(len(smiles), 200, replace=False)
    X = featurize_smiles([smiles[i] for i in pick], DEFAULT_SPEC)
    rho = spearmanr(prior.columns(X, OFFSET)[:, 0], tm[pick]).statistic
    assert rho > 0.8


def _small_copy(path: Path, rows: tuple[list[str], np.ndarray], column: str) -> Path:
    smiles, values = rows
    with gzip.open(path, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["smiles", column])
        writer.writerows((s, f"{v:.2f}") for s, v in zip(smiles[:300], values[:300], strict=True))
    return path


def test_the_boosters_are_trained_once_cached_on_disk_and_the_same_when_loaded(tmp_path: Path) -> None:
    tm = _small_copy(tmp_path / "tm.csv.gz", physchem.training_data(), "tm_k")
    lp = _small_copy(tmp_path / "lp.csv.gz", physchem.log_p_training_data(), "log_p")
    cache = tmp_path / "cache"
    fresh = physchem.load_prior.__wrapped__(cache, tm, lp)
    files = sorted(cache.iterdir())
    assert [f.name.split("-")[0] for f in files] == ["log_p_prior", "melting_point_prior"]
    assert all(f.suffix == ".ubj" and f.stat().st_mode & 0o044 == 0o044 for f in files)  # workers of other users
    again = physchem.load_prior.__wrapped__(cache, tm, lp)  # from the files this time
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    np.testing.assert_array_equal(fresh.columns(X, OFFSET), again.columns(X, OFFSET))
    assert sorted(cache.iterdir()) == files  # no temp files left behind


@pytest.fixture(scope="module")
def with_prior(logs: np.ndarray) -> BootstrapEnsemble:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    return BootstrapEnsemble(**FAST, melting_point_prior=True, descriptor_offset=OFFSET).fit(X, logs)


def test_an_ensemble_with_the_prior_takes_plain_x_and_its_members_see_three_more_columns(
    with_prior: BootstrapEnsemble, logs: np.ndarray
) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    assert with_prior.n_features_in_ == X.shape[1]
    assert with_prior.members_[0].num_features() == X.shape[1] + 3
    assert with_prior.member_feature_names_extra == physchem.PRIOR_NAMES
    # The kernel half uses the prior's columns too (all three vary over the molecules).
    assert {X.shape[1], X.shape[1] + 1, X.shape[1] + 2} <= set(with_prior.basis_.columns_.tolist())
    without = BootstrapEnsemble(**FAST, descriptor_offset=OFFSET).fit(X, logs)
    assert without.members_[0].num_features() == X.shape[1]
    assert not np.array_equal(with_prior.predict(X).mean, without.predict(X).mean)


def test_pool_sized_blocks_reuse_one_buffer_without_changing_a_score(with_prior: BootstrapEnsemble) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    pool = np.repeat(X, 300, axis=0)  # 7,500 rows: stacked trees and the reused buffer
    other = pool[::-1].copy()
    first = with_prior.predict_members(pool)
    with_prior.predict_members(other)  # the same buffer, other rows
    small = np.concatenate([with_prior.predict_members(pool[s : s + 100]) for s in range(0, pool.shape[0], 100)], axis=1)
    np.testing.assert_allclose(first, small, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(first, with_prior.predict_members(pool))


def test_the_prior_travels_with_the_artifact(with_prior: BootstrapEnsemble, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_artifact(path, with_prior, feature_spec=DEFAULT_SPEC, training_ids=list(range(len(SMILES))), metrics={})
    loaded = load_artifact(path).ensemble
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    np.testing.assert_array_equal(loaded.predict(X).mean, with_prior.predict(X).mean)
    assert loaded.prior_ is not physchem.load_prior()  # its own copy, not the machine's cache


def test_a_model_fit_with_the_melting_point_only_prior_scores_as_before_after_a_round_trip(
    prior: physchem.PhyschemPrior, logs: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An eleventh-session artifact: its members were fit on X plus two columns."""
    old = physchem.MeltingPointPrior.__new__(physchem.MeltingPointPrior)
    old.__dict__["booster"] = prior.booster
    monkeypatch.setattr(ensemble_module, "load_prior", lambda: old)
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    fitted = BootstrapEnsemble(**FAST, melting_point_prior=True, descriptor_offset=OFFSET).fit(X, logs)
    assert fitted.members_[0].num_features() == X.shape[1] + 2
    path = tmp_path / "old.joblib"
    save_artifact(path, fitted, feature_spec=DEFAULT_SPEC, training_ids=list(range(len(SMILES))), metrics={})
    loaded = load_artifact(path).ensemble
    assert "log_p_booster" not in vars(loaded.prior_)  # as pickled before the log P booster existed
    assert loaded.member_feature_names_extra == physchem.MELTING_POINT_ONLY_NAMES
    np.testing.assert_array_equal(loaded.predict(X).mean, fitted.predict(X).mean)
    pool = np.tile(X, (300, 1))  # 6,000 rows: the reused buffer at the old width
    np.testing.assert_allclose(loaded.predict(pool).mean[: len(SMILES)], fitted.predict(X).mean, atol=1e-5)


def test_the_explanation_adds_up_and_names_the_prior_columns(with_prior: BootstrapEnsemble) -> None:
    smiles = "O=C1c2ccccc2C(=O)c2ccccc21"  # anthraquinone: a high-melting, poorly soluble solid
    ex = explain_smiles(with_prior, DEFAULT_SPEC, smiles, top_k=2000, with_svg=False)
    mean = float(with_prior.predict(featurize_smiles([smiles], DEFAULT_SPEC)).mean[0])
    total = ex.base_value + sum(ex.atom_weights) + ex.descriptor_contribution + ex.absent_bits_contribution
    assert total == pytest.approx(mean, abs=1e-3)
    named = {f.name: f for f in ex.top_features}
    assert set(physchem.PRIOR_NAMES) & set(named)
    if physchem.PRIOR_NAMES[0] in named:
        assert named[physchem.PRIOR_NAMES[0]].value > 400  # it melts at 559 K


# --- How a regression ensemble uses the prior: kernel weight and GSE baseline ---------


def test_the_kernel_half_weights_the_prior_columns_and_only_them(with_prior: BootstrapEnsemble) -> None:
    basis = with_prior.basis_
    is_prior = basis.columns_ >= with_prior.n_features_in_
    assert is_prior.sum() == 3
    np.testing.assert_array_equal(basis.weights_, np.where(is_prior, with_prior.smooth_prior_weight, 1.0))
    assert with_prior.smooth_prior_weight == 4.0  # the default (BENCHMARKS.md, 2026-12-01)


def test_a_design_reads_the_kernel_weights_only_where_there_is_a_kernel_half(
    with_prior: BootstrapEnsemble, logs: np.ndarray
) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    width = with_prior.member_input(X).shape[1]
    weights = with_prior.kernel_column_weights(width)
    np.testing.assert_array_equal(weights[with_prior.basis_.columns_], with_prior.basis_.weights_)
    assert weights[: X.shape[1]].tolist() == [1.0] * X.shape[1] and weights[X.shape[1] :].tolist() == [4.0] * 3
    # Trees alone (a classifier, or no kernel share) weigh no column more than another,
    # though their members see the prior's columns too.
    classes = (logs > np.median(logs)).astype(int)
    for trees_only in (
        BootstrapEnsemble(**FAST, task="classification", melting_point_prior=True, descriptor_offset=OFFSET).fit(X, classes),
        BootstrapEnsemble(**FAST, melting_point_prior=True, descriptor_offset=OFFSET, smooth_weight=0.0).fit(X, logs),
    ):
        assert trees_only.member_input(X).shape[1] == width
        assert trees_only.basis_ is None and trees_only.kernel_column_weights(width) is None


def test_the_baseline_is_half_the_least_squares_line_in_the_gse_column(
    with_prior: BootstrapEnsemble, logs: np.ndarray
) -> None:
    X = with_prior.member_input(featurize_smiles(SMILES, DEFAULT_SPEC))
    gse = X[:, with_prior.n_features_in_ + 2].astype(np.float64)
    slope, intercept = np.polyfit(gse, logs, 1)
    b = with_prior.baseline_
    assert b["column"] == with_prior.n_features_in_ + 2
    assert (b["slope"], b["intercept"]) == pytest.approx((0.5 * slope, 0.5 * intercept))
    assert (b["lo"], b["hi"]) == (pytest.approx(gse.min()), pytest.approx(gse.max()))
    # Beyond the training range it stays at the end of the line, not extrapolated along it.
    beyond = X[:2].copy()
    beyond[:, b["column"]] = [gse.max() + 10.0, gse.min() - 10.0]
    end = [b["slope"] * gse.max() + b["intercept"], b["slope"] * gse.min() + b["intercept"]]
    np.testing.assert_allclose(with_prior.baseline_terms(beyond)[1], end, rtol=1e-5)


def test_the_baseline_moves_every_member_alike_so_the_spread_is_the_members(
    with_prior: BootstrapEnsemble,
) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    with_baseline = with_prior.predict_members(X)
    _, value, _ = with_prior.baseline_terms(with_prior.member_input(X))
    saved = with_prior.baseline_
    try:
        with_prior.baseline_ = None  # as an artifact from before the baseline loads
        without = with_prior.predict_members(X)
    finally:
        with_prior.baseline_ = saved
    np.testing.assert_allclose(with_baseline - without, np.broadcast_to(value, without.shape), atol=1e-5)
    assert np.ptp(value) > 0.5  # a real line over these compounds, not a constant
    np.testing.assert_allclose(with_baseline.std(axis=0), without.std(axis=0), atol=1e-5)


def test_without_the_prior_or_with_a_zero_share_there_is_no_baseline_nor_weight(logs: np.ndarray) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    plain = BootstrapEnsemble(**FAST, descriptor_offset=OFFSET).fit(X, logs)
    assert plain.baseline_ is None and plain.basis_.weights_ is None
    off = BootstrapEnsemble(**FAST, melting_point_prior=True, descriptor_offset=OFFSET, prior_baseline=0.0).fit(X, logs)
    assert off.baseline_ is None and off.baseline_terms(off.member_input(X)) is None


@pytest.mark.parametrize(("param", "value"), [("prior_baseline", 1.5), ("prior_baseline", -0.1), ("smooth_prior_weight", 0.0)])
def test_it_refuses_a_baseline_share_or_a_kernel_weight_out_of_range(logs: np.ndarray, param: str, value: float) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    with pytest.raises(ValueError, match=param):
        BootstrapEnsemble(**FAST, melting_point_prior=True, descriptor_offset=OFFSET, **{param: value}).fit(X, logs)


def test_a_gse_that_is_not_finite_takes_the_training_median(with_prior: BootstrapEnsemble) -> None:
    X = with_prior.member_input(featurize_smiles(SMILES, DEFAULT_SPEC))
    b = with_prior.baseline_
    gse = X[:, b["column"]].astype(np.float64)
    assert b["fill"] == pytest.approx(float(np.median(gse)))
    odd = X[:1].copy()
    odd[0, b["column"]] = np.nan
    assert with_prior.baseline_terms(odd)[1][0] == pytest.approx(b["slope"] * b["fill"] + b["intercept"], rel=1e-5)


def test_stored_prior_columns_stand_in_for_the_boosters_and_nan_rows_are_computed(
    with_prior: BootstrapEnsemble,
) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    for rows in (X, np.repeat(X, 100, axis=0)):  # a few rows, and pool-sized blocks (the reused buffer)
        columns = with_prior.prior_.columns(rows, OFFSET)
        partial = columns.copy()
        partial[::2] = np.nan  # nothing stored for these: computed
        want = with_prior.predict(rows, return_members=False)
        for given in (columns, partial):
            got = with_prior.predict(rows, return_members=False, prior_columns=given)
            np.testing.assert_array_equal(got.mean, want.mean)
            np.testing.assert_array_equal(got.std, want.std)
        # The given columns are what the members see: other values, other scores.
        shifted = with_prior.predict(rows, return_members=False, prior_columns=columns + np.float32(50.0))
        assert not np.allclose(shifted.mean, want.mean)
    with pytest.raises(ValueError, match="stored prior columns"):
        with_prior.predict(X, prior_columns=np.zeros((len(SMILES), 2), dtype=np.float32))


def test_the_key_names_the_boosters_and_survives_the_artifact(
    with_prior: BootstrapEnsemble, prior: physchem.PhyschemPrior, tmp_path: Path
) -> None:
    assert with_prior.prior_key == prior.key and len(prior.key) == 16
    path = tmp_path / "model.joblib"
    save_artifact(path, with_prior, feature_spec=DEFAULT_SPEC, training_ids=list(range(len(SMILES))), metrics={})
    loaded = load_artifact(path).ensemble
    assert "_key" not in loaded.prior_.__getstate__()  # recomputed from the trees, never read from a file
    assert loaded.prior_key == prior.key
    melting_point_only = physchem.PhyschemPrior(prior.booster)
    assert melting_point_only.key != prior.key
    swapped = physchem.PhyschemPrior(prior.log_p_booster, prior.booster)
    assert swapped.key != prior.key
    assert BootstrapEnsemble(**FAST).prior_key is None  # no prior, nothing stored is read
