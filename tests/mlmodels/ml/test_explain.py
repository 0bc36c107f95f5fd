from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from mlmodels.ml.ensemble import BootstrapEnsemble
from mlmodels.ml.explain import explain_smiles
from mlmodels.ml.features import FeatureSpec, featurize_smiles

from .chem_data import SMILES

SPEC = FeatureSpec(name="counts+ap+props", morgan="counts", n_bits=512, atom_pairs=256, descriptors="props")
FAST = {"n_members": 3, "n_estimators": 30, "learning_rate": 0.2, "max_depth": 3, "colsample_bytree": 1.0}


@pytest.fixture(scope="module")
def regression_model(logs: np.ndarray) -> BootstrapEnsemble:
    return BootstrapEnsemble(**FAST).fit(featurize_smiles(SMILES, SPEC), logs)


def test_atom_weights_plus_the_rest_add_up_to_the_ensemble_mean(regression_model: BootstrapEnsemble) -> None:
    smiles = "CC(=O)Nc1ccc(O)cc1"
    ex = explain_smiles(regression_model, SPEC, smiles)
    ensemble_mean = float(regression_model.predict(featurize_smiles([smiles], SPEC)).mean[0])
    total = ex.base_value + sum(ex.atom_weights) + ex.descriptor_contribution + ex.absent_bits_contribution
    assert total == pytest.approx(ensemble_mean, abs=1e-3)
    assert ex.prediction == pytest.approx(ensemble_mean, abs=1e-3)
    assert len(ex.atom_weights) == 11  # heavy atoms of paracetamol
    assert any(w != 0 for w in ex.atom_weights)
    assert ex.svg.startswith("<svg")
    assert ex.top_features and all(f.contribution != 0 for f in ex.top_features)


def test_bits_only_model_matches_a_single_xgboost_member(logs: np.ndarray) -> None:
    spec = FeatureSpec(name="bits")
    model = BootstrapEnsemble(**(FAST | {"n_members": 1})).fit(featurize_smiles(SMILES, spec), logs)
    ex = explain_smiles(model, spec, "Oc1ccccc1", with_svg=False)
    x = featurize_smiles(["Oc1ccccc1"], spec)
    member = model.members_[0]
    assert isinstance(member, xgb.Booster)
    expected = float(member.inplace_predict(x)[0])
    assert ex.base_value + sum(ex.atom_weights) + ex.non_atom_contribution == pytest.approx(
        expected, abs=1e-4
    )
    assert ex.descriptor_contribution == 0.0


def test_classification_explains_the_log_odds_of_the_chosen_class(logs: np.ndarray) -> None:
    y = np.digitize(logs, [-2.0, 0.0])  # 3 classes
    X = featurize_smiles(SMILES, SPEC)
    model = BootstrapEnsemble(task="classification", **FAST).fit(X, y)
    ex = explain_smiles(model, SPEC, "CCCCCCCC", class_index=0, with_svg=False)
    x = featurize_smiles(["CCCCCCCC"], SPEC)
    margins = [
        m.predict(xgb.DMatrix(x), output_margin=True)[0][int(np.searchsorted(present, 0))]
        for m, present in zip(model.members_, model.member_classes_, strict=True)
    ]
    total = ex.base_value + sum(ex.atom_weights) + ex.non_atom_contribution
    assert total == pytest.approx(float(np.mean(margins)), abs=1e-3)
    assert ex.target == "log-odds of class 0"


def test_mlp_members_cannot_be_explained(logs: np.ndarray) -> None:
    spec = FeatureSpec(name="p", morgan="none", descriptors="props")
    model = BootstrapEnsemble(algorithm="mlp", n_members=1, hidden_layer_sizes=(4,)).fit(
        featurize_smiles(SMILES, spec), logs
    )
    with pytest.raises(ValueError, match="tree members"):
        explain_smiles(model, spec, "CCO")


def test_near_zero_atom_weights_are_not_painted_as_if_they_mattered() -> None:
    from mlmodels.ml.explain import atoms_worth_colouring

    # 2-methylpteridine as found in QA: atoms sum to -0.005 (largest 0.003), descriptors +2.04.
    weights = [0.003, -0.002, -0.001, -0.002, -0.001, -0.001, 0.0, -0.001, 0.0, 0.0, 0.0]
    assert not atoms_worth_colouring(weights, 2.04)
    assert atoms_worth_colouring([0.4, -0.1, 0.0], 0.5)
    assert not atoms_worth_colouring([0.0, 0.0], 0.0)


def test_the_explanation_states_the_atoms_share_and_shades_only_when_it_counts(regression_model: BootstrapEnsemble) -> None:
    from compounds.chemistry import depict_svg
    from mlmodels.ml.explain import atoms_worth_colouring

    ex = explain_smiles(regression_model, SPEC, "CC(=O)Nc1ccc(O)cc1")
    w = np.abs(ex.atom_weights)
    magnitude = w.sum() + abs(ex.descriptor_contribution) + abs(ex.absent_bits_contribution)
    assert ex.atom_share == pytest.approx(w.sum() / magnitude)
    assert ex.atoms_total == pytest.approx(sum(ex.atom_weights))
    assert ex.atoms_coloured == atoms_worth_colouring(ex.atom_weights, ex.non_atom_contribution)
    plain = depict_svg(ex.smiles, width=360, height=260)
    assert (ex.svg != plain) == ex.atoms_coloured
