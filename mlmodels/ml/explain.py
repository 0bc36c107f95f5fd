"""SHAP explanations of one compound, mapped back onto its atoms.

TreeSHAP per ensemble member, averaged over members (SHAP values are additive, so
the average explains the ensemble mean). Each fingerprint column the compound has
switched on is split evenly over the atoms of the environments that set it (per
occurrence, then per atom), giving atom weights that sum to the "atom part".
What cannot be put on atoms is reported separately:

* descriptor columns (whole-molecule properties, including the physico-chemical
  prior's columns when the ensemble has it), and
* fingerprint columns that are OFF in this compound: "this substructure is
  absent" moves the prediction too, but no atom of this molecule carries it.

So: prediction = base_value + sum(atom_weights) + descriptor_contribution
+ absent_bits_contribution (exactly, up to float error).

Colours: `compounds.chemistry.depict_svg` scales the shading to the molecule's
largest atom weight, so on its own it paints near-zero weights in full red/blue.
The atoms are therefore shaded only when the largest of them reaches
ATOM_COLOUR_MIN_SHARE of the explanation's magnitude (|atoms| + |descriptors| +
|absent substructures|); below that the structure is drawn plain and the page says
the atoms carry (almost) none of the prediction. An absolute colour scale (full
colour at a fixed reference) needs depict_svg to take a scale; it re-normalises
whatever it is given.

Regression members with a smooth part (weight BootstrapEnsemble.smooth_share: a
kernel ridge on the non-binary columns and/or one with a MinMax kernel on the count
fingerprints, see mlmodels.ml.smooth) are explained as
`(1 - w) * tree SHAP + w * smooth part`: the smooth part is a whole-molecule
similarity term, so its deviation from its training-set mean is added to
`descriptor_contribution` (and `smooth_contribution` reports it alone), and that
mean to `base_value`. Atom weights then carry the tree half only. With the prior, a
regression ensemble also adds a line in the prior's GSE column (the `prior_baseline`);
it is booked on that column, its training mean in `base_value`.

For classification the explained quantity is a member's raw margin (log-odds)
for `class_index`, averaged over members, because SHAP is additive there, not in
probability space.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import shap
import xgboost as xgb
from rdkit import Chem

from compounds.chemistry import depict_svg, parse_smiles, standardize

from .ensemble import BootstrapEnsemble, _ConstantClassifier
from .features import FeatureSpec, atom_bit_map, feature_names, featurize_mols


@dataclass(frozen=True, slots=True)
class FeatureContribution:
    name: str
    value: float  # the compound's feature value
    contribution: float  # mean SHAP value over members


# Share of the explanation's magnitude the largest atom weight needs before atoms are
# shaded (depict_svg itself leaves atoms under 5 % of its own scale unshaded).
ATOM_COLOUR_MIN_SHARE = 0.05


def atoms_worth_colouring(atom_weights: Any, other: float) -> bool:
    """Whether the largest atom weight is a visible part of the explanation, whose
    magnitude is sum |atom weights| + |other| (descriptors and absent substructures)."""
    w = np.abs(np.asarray(atom_weights, dtype=float))
    magnitude = float(w.sum()) + abs(other)
    return bool(w.size) and magnitude > 0 and float(w.max()) >= ATOM_COLOUR_MIN_SHARE * magnitude


@dataclass(frozen=True, slots=True)
class Explanation:
    smiles: str  # canonical SMILES; atom indices refer to this string's atom order
    target: str  # "value" (regression) or "log-odds of class k"
    prediction: float
    base_value: float
    atom_weights: list[float]
    descriptor_contribution: float
    absent_bits_contribution: float
    top_features: list[FeatureContribution] = field(default_factory=list)
    svg: str = ""
    smooth_contribution: float = 0.0  # part of descriptor_contribution from the kernel ridge half
    atoms_coloured: bool = False  # whether svg shades the atoms (atoms_worth_colouring)

    @property
    def non_atom_contribution(self) -> float:
        return self.descriptor_contribution + self.absent_bits_contribution

    @property
    def atoms_total(self) -> float:
        """What the atoms add to the prediction together (their signed sum)."""
        return float(sum(self.atom_weights))

    @property
    def atom_share(self) -> float:
        """The atoms' part of the explanation's magnitude: sum |w| / (sum |w| + |descriptors| + |absent|)."""
        atoms = float(np.abs(np.asarray(self.atom_weights, dtype=float)).sum())
        magnitude = atoms + abs(self.descriptor_contribution) + abs(self.absent_bits_contribution)
        return atoms / magnitude if magnitude > 0 else 0.0

    @property
    def largest_atom_weight(self) -> float:
        return float(np.abs(np.asarray(self.atom_weights, dtype=float)).max()) if self.atom_weights else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "non_atom_contribution": self.non_atom_contribution,
            "atoms_total": self.atoms_total,
            "atom_share": self.atom_share,
        }


def _member_shap(
    member: Any, x: np.ndarray, class_index: int | None, present: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """(n_features,) SHAP values and the base value of one member for one row."""
    if isinstance(member, _ConstantClassifier):
        raise ValueError("a member trained on one class only cannot be explained; retrain on more data")
    if not isinstance(member, xgb.Booster) and not hasattr(member, "estimators_"):
        raise ValueError("SHAP explanations need tree members (algorithm 'xgboost' or 'rf')")
    explainer = shap.TreeExplainer(member)
    values = np.asarray(explainer.shap_values(x))
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    if class_index is None:
        return values.reshape(-1), float(base[0])
    assert present is not None
    if class_index not in present:
        raise ValueError(f"a member never saw class {class_index}; it cannot be explained for it")
    local = int(np.searchsorted(present, class_index))
    if values.ndim == 3:  # multi-class: (1, n_features, k_member)
        return values[0, :, local], float(base[local])
    # Binary XGBoost/RF explain class 1 (XGBoost gives log-odds of the positive class).
    sign = 1.0 if local == 1 else -1.0
    if values.ndim == 2:
        return sign * values[0], sign * float(base[0])
    return sign * values.reshape(-1), sign * float(base[0])


def explain_smiles(
    ensemble: BootstrapEnsemble,
    spec: FeatureSpec,
    smiles: str,
    *,
    class_index: int | None = None,
    top_k: int = 10,
    width: int = 360,
    height: int = 260,
    with_svg: bool = True,
) -> Explanation:
    """Explain the ensemble's prediction for one SMILES (standardised like registration)."""
    # Re-parse the canonical SMILES so atom indices match what depict_svg draws.
    canonical = Chem.MolToSmiles(standardize(parse_smiles(smiles)))
    mol = Chem.MolFromSmiles(canonical)
    x = featurize_mols([mol], spec)
    if ensemble.task == "classification":
        if class_index is None:
            class_index = int(ensemble.predict(x, return_members=False).labels[0])
        if not 0 <= class_index < ensemble.n_classes_:
            raise ValueError(f"class_index must be in 0..{ensemble.n_classes_ - 1}")
    else:
        class_index = None

    # The members' own columns: with the physico-chemical prior, X plus its columns,
    # which are whole-molecule terms like the descriptors.
    x_members = ensemble.member_input(x)
    shap_sum = np.zeros(x_members.shape[1], dtype=np.float64)
    base_sum = 0.0
    presents = (
        ensemble.member_classes_ if ensemble.task == "classification" else [None] * len(ensemble.members_)
    )
    for member, present in zip(ensemble.members_, presents, strict=True):
        values, base = _member_shap(member, x_members, class_index, present)
        shap_sum += values
        base_sum += base
    n = len(ensemble.members_)
    contrib = shap_sum / n
    base_value = base_sum / n
    smooth_part = 0.0
    smooth = ensemble.smooth_members(x)
    if smooth is not None:
        w = float(ensemble.smooth_share)
        contrib *= 1.0 - w
        base_value = (1.0 - w) * base_value + w * ensemble.smooth_expected_
        smooth_part = w * (float(smooth.mean()) - ensemble.smooth_expected_)
    baseline = ensemble.baseline_terms(x_members)
    if baseline is not None:
        # The linear term on the prior's GSE column (BootstrapEnsemble._fit_baseline):
        # its training mean joins the base value, its deviation that column.
        column, value, mean = baseline
        base_value += mean
        contrib[column] += float(value[0]) - mean

    atom_weights = np.zeros(mol.GetNumAtoms(), dtype=np.float64)
    mapped = atom_bit_map(mol, spec)
    n_fp = (spec.n_bits if spec.morgan != "none" else 0) + spec.atom_pairs
    absent = 0.0
    for col in range(n_fp):
        occurrences = mapped.get(col)
        if not occurrences or x[0, col] == 0:
            absent += contrib[col]
            continue
        share = contrib[col] / len(occurrences)
        for atoms in occurrences:
            atom_weights[atoms] += share / len(atoms)
    descriptor_part = float(contrib[n_fp:].sum()) + smooth_part

    names = [*feature_names(spec), *ensemble.member_feature_names_extra]
    order = np.argsort(-np.abs(contrib))[:top_k]
    top = [
        FeatureContribution(names[i], float(x_members[0, i]), float(contrib[i])) for i in order if contrib[i] != 0
    ]
    prediction = base_value + float(contrib.sum()) + smooth_part
    target = "value" if class_index is None else f"log-odds of class {class_index}"
    coloured = atoms_worth_colouring(atom_weights, descriptor_part + float(absent))
    svg = ""
    if with_svg:
        shading = atom_weights.tolist() if coloured else None
        svg = depict_svg(canonical, width=width, height=height, atom_weights=shading)
    return Explanation(
        smiles=canonical,
        target=target,
        prediction=prediction,
        base_value=base_value,
        atom_weights=atom_weights.tolist(),
        descriptor_contribution=descriptor_part,
        absent_bits_contribution=float(absent),
        top_features=top,
        svg=svg,
        smooth_contribution=smooth_part,
        atoms_coloured=coloured,
    )
