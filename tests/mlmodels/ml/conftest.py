"""Shared tiny data for the framework-free ML tests (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from compounds.chemistry import fingerprint_bytes, fingerprints_to_matrix, parse_smiles, standardize

from .chem_data import LOGS, SMILES


@pytest.fixture(scope="session")
def mols() -> list:
    return [standardize(parse_smiles(s)) for s in SMILES]


@pytest.fixture(scope="session")
def packed(mols: list) -> np.ndarray:
    return fingerprints_to_matrix([fingerprint_bytes(m) for m in mols])


@pytest.fixture(scope="session")
def logs() -> np.ndarray:
    return np.asarray(LOGS, dtype=np.float32)
