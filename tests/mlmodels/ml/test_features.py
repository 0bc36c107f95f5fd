from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from mlmodels.ml.features import (
    DEFAULT_SPEC,
    SPECS,
    FeatureSpec,
    atom_bit_map,
    build_matrix,
    compute_stored_features,
    descriptor_names,
    feature_names,
    featurize_smiles,
    stored_from_bytes,
)

from .chem_data import SMILES


def test_spec_survives_a_dict_round_trip() -> None:
    for spec in [*SPECS.values(), DEFAULT_SPEC]:
        assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_spec_refuses_bits_with_settings_other_than_the_stored_fingerprint() -> None:
    with pytest.raises(ValueError, match="stored fingerprint"):
        FeatureSpec(name="x", morgan="bits", radius=3)  # a different radius cannot come from stored bits


def test_spec_refuses_unknown_keys_and_empty_specs() -> None:
    with pytest.raises(ValueError, match="unknown"):
        FeatureSpec.from_dict({"name": "x", "colour": "red"})
    with pytest.raises(ValueError, match="at least one"):
        FeatureSpec(name="x", morgan="none")


@pytest.mark.parametrize(
    "spec",
    [
        FeatureSpec(name="bits"),
        FeatureSpec(name="props+bits", descriptors="props"),
        FeatureSpec(name="props+bits512", n_bits=512, descriptors="props"),
        FeatureSpec(name="counts+ap", morgan="counts", n_bits=512, atom_pairs=256, descriptors="props"),
    ],
    ids=lambda s: s.name,
)
def test_stored_path_equals_the_smiles_path(spec: FeatureSpec, mols: list, packed: np.ndarray) -> None:
    # What the Django side does: store packed bits + float32 bytes once, rebuild X later.
    blobs = [compute_stored_features(m, spec).tobytes() for m in mols]
    X_stored = build_matrix(spec, packed, stored_from_bytes(blobs, spec))
    X_smiles = featurize_smiles(SMILES, spec)
    assert X_stored.dtype == np.float32
    assert X_stored.shape == (len(SMILES), spec.n_features) == X_smiles.shape
    np.testing.assert_array_equal(X_stored, X_smiles)
    assert len(feature_names(spec)) == spec.n_features


def test_x_written_into_a_reused_buffer_equals_a_new_x(mols: list, packed: np.ndarray) -> None:
    """The pool scoring reuses X buffers between chunks: the rows are the same, the buffer's
    rows past n are left alone, and a buffer that does not fit is not used."""
    spec = FeatureSpec(name="props+bits512", n_bits=512, descriptors="props")
    stored = stored_from_bytes([compute_stored_features(m, spec).tobytes() for m in mols], spec)
    fresh = build_matrix(spec, packed, stored)
    buffer = np.full((len(mols) + 3, spec.n_features), 7.0, dtype=np.float32)
    into = build_matrix(spec, packed, stored, out=buffer)
    assert np.shares_memory(into, buffer) and into.shape == fresh.shape
    np.testing.assert_array_equal(into, fresh)
    assert (buffer[len(mols):] == 7.0).all()
    for unfit in (np.zeros((len(mols) - 1, spec.n_features), np.float32), np.zeros((len(mols), spec.n_features))):
        other = build_matrix(spec, packed, stored, out=unfit)
        assert not np.shares_memory(other, unfit)
        np.testing.assert_array_equal(other, fresh)


def test_pure_bits_spec_stores_nothing(mols: list) -> None:
    spec = FeatureSpec(name="bits")
    assert spec.n_stored == 0
    assert compute_stored_features(mols[0], spec).shape == (0,)


def test_bits_match_the_registered_fingerprint(packed: np.ndarray) -> None:
    X = build_matrix(FeatureSpec(name="bits"), packed, None)
    np.testing.assert_array_equal(np.packbits(X.astype(np.uint8), axis=1), packed)


@pytest.mark.parametrize("n_bits", [256, 512, 1024])
def test_folding_the_stored_fingerprint_equals_a_smaller_fingerprint(
    n_bits: int, mols: list, packed: np.ndarray
) -> None:
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=n_bits)
    direct = np.stack([gen.GetFingerprintAsNumPy(m) for m in mols])
    folded = build_matrix(FeatureSpec(name="b", n_bits=n_bits), packed, None)
    np.testing.assert_array_equal(folded, direct)


def test_spec_refuses_a_fold_that_is_not_exact() -> None:
    with pytest.raises(ValueError, match="folded"):
        FeatureSpec(name="x", morgan="bits", n_bits=300)


def test_stored_from_bytes_refuses_a_wrong_length() -> None:
    spec = FeatureSpec(name="p", morgan="none", descriptors="props")
    with pytest.raises(ValueError, match="wrong length"):
        stored_from_bytes([np.zeros(3, dtype=np.float32).tobytes()], spec)


def test_descriptor_values_are_finite_or_missing(mols: list) -> None:
    spec = FeatureSpec(name="fast", morgan="none", descriptors="fast")
    values = np.stack([compute_stored_features(m, spec) for m in mols])
    assert values.shape[1] == len(descriptor_names("fast"))
    assert not np.isinf(values).any()
    # MolLogP is in the fast set (it is the single most useful solubility descriptor).
    assert "MolLogP" in descriptor_names("fast")
    assert "qed" not in descriptor_names("fast")


def test_atom_bit_map_covers_every_on_bit_with_valid_atoms(mols: list) -> None:
    spec = FeatureSpec(name="counts+ap", morgan="counts", n_bits=1024, atom_pairs=512)
    mol = mols[12]  # paracetamol
    x = featurize_smiles([Chem.MolToSmiles(mol)], spec)[0]
    mapping = atom_bit_map(mol, spec)
    assert set(mapping) == set(np.flatnonzero(x))
    for col, occurrences in mapping.items():
        # A count feature has one occurrence per time its environment appears.
        assert len(occurrences) == x[col]
        for atoms in occurrences:
            assert atoms and all(0 <= a < mol.GetNumAtoms() for a in atoms)
