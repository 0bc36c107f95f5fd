"""The melting-point prior: its data, its two columns, its cache, and an ensemble that uses it."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen
from scipy.stats import spearmanr

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
def prior() -> physchem.MeltingPointPrior:
    return physchem.load_prior()


@pytest.fixture(scope="module")
def melting_points() -> tuple[list[str], np.ndarray]:
    return physchem.training_data()


def _connectivity(smiles: str) -> str:
    return Chem.MolToInchiKey(Chem.MolFromSmiles(smiles)).split("-")[0]


def test_the_general_solubility_equation_by_hand() -> None:
    # 125 °C above room temperature costs 1.25 log units; a liquid's melting point costs nothing.
    got = physchem.gse_log_s(np.array([423.15, 250.0]), np.array([2.0, 1.0]))
    np.testing.assert_allclose(got, [0.5 - 1.25 - 2.0, 0.5 - 1.0], atol=1e-12)


def test_the_shipped_data_holds_no_compound_of_the_solubility_benchmark(
    melting_points: tuple[list[str], np.ndarray],
) -> None:
    smiles, tm = melting_points
    assert len(smiles) > 10_000 and np.all((tm > 50) & (tm < 800))  # kelvin: propene 88, perylene dyes 766
    with (SHARED / "solubility.csv").open(newline="") as fh:
        benchmark = {_connectivity(r["smiles"]) for r in csv.DictReader(fh)}
    assert benchmark.isdisjoint(_connectivity(s) for s in smiles)


def test_the_columns_are_the_boosters_melting_point_and_the_gse_with_crippen_logp(
    prior: physchem.MeltingPointPrior,
) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    cols = prior.columns(X, OFFSET)
    expected_tm = prior.booster.inplace_predict(X[:, OFFSET : OFFSET + physchem.N_DESCRIPTORS])
    np.testing.assert_array_equal(cols[:, 0], expected_tm)
    logp = np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in SMILES])
    np.testing.assert_allclose(cols[:, 1], physchem.gse_log_s(cols[:, 0], logp), atol=1e-4)
    augmented = prior.augment(X, OFFSET)
    np.testing.assert_array_equal(augmented[:, : X.shape[1]], X)
    np.testing.assert_array_equal(augmented[:, X.shape[1] :], cols)
    with pytest.raises(ValueError, match="descriptor columns"):
        prior.columns(X, X.shape[1] - 10)


def test_the_booster_orders_melting_points_it_learned(
    prior: physchem.MeltingPointPrior, melting_points: tuple[list[str], np.ndarray]
) -> None:
    """A wrong descriptor block or order would leave the booster guessing (ρ ≈ 0)."""
    smiles, tm = melting_points
    pick = np.random.default_rng(0).choice(len(smiles), 200, replace=False)
    X = featurize_smiles([smiles[i] for i in pick], DEFAULT_SPEC)
    rho = spearmanr(prior.columns(X, OFFSET)[:, 0], tm[pick]).statistic
    assert rho > 0.8


def test_the_booster_is_trained_once_cached_on_disk_and_the_same_when_loaded(tmp_path: Path) -> None:
    smiles, tm = physchem.training_data()
    small = tmp_path / "small.csv.gz"
    with gzip.open(small, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["smiles", "tm_k"])
        writer.writerows((s, f"{t:.2f}") for s, t in zip(smiles[:300], tm[:300], strict=True))
    cache = tmp_path / "cache"
    fresh = physchem.load_prior.__wrapped__(cache, small)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("melting_point_prior-") and files[0].suffix == ".ubj"
    assert files[0].stat().st_mode & 0o044 == 0o044  # readable by workers running as another user
    again = physchem.load_prior.__wrapped__(cache, small)  # from the file this time
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    np.testing.assert_array_equal(fresh.columns(X, OFFSET), again.columns(X, OFFSET))
    assert list(cache.iterdir()) == files  # no temp files left behind


@pytest.fixture(scope="module")
def with_prior(logs: np.ndarray) -> BootstrapEnsemble:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    return BootstrapEnsemble(**FAST, melting_point_prior=True, descriptor_offset=OFFSET).fit(X, logs)


def test_an_ensemble_with_the_prior_takes_plain_x_and_its_members_see_two_more_columns(
    with_prior: BootstrapEnsemble, logs: np.ndarray
) -> None:
    X = featurize_smiles(SMILES, DEFAULT_SPEC)
    assert with_prior.n_features_in_ == X.shape[1]
    assert with_prior.members_[0].num_features() == X.shape[1] + 2
    # The kernel half uses the prior's columns too (both vary over the molecules).
    assert {X.shape[1], X.shape[1] + 1} <= set(with_prior.basis_.columns_.tolist())
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
