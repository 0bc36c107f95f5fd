"""Tiny hand-picked compounds for the ML tests."""

SMILES = [
    "CCO",
    "CCCO",
    "CCCCO",
    "CCCCCO",
    "c1ccccc1",
    "Cc1ccccc1",
    "CCc1ccccc1",
    "Oc1ccccc1",
    "Clc1ccccc1",
    "Clc1ccc(Cl)cc1",
    "CC(=O)O",
    "CCC(=O)O",
    "CC(=O)Nc1ccc(O)cc1",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "CCN(CC)CC",
    "OCC(O)CO",
    "ClC(Cl)Cl",
    "CCOC(=O)C",
    "c1ccc2ccccc2c1",
    "CCCCCCCC",
]
# Toy logS-like target: chain length and aromatic rings lower it, OH raises it.
LOGS = [1.1, 0.6, 0.0, -0.6, -1.6, -2.2, -2.8, 0.0, -2.4, -3.3, 1.2, 1.0, -1.0, -0.8, 0.2, 1.1, -1.2, -0.1, -3.6, -5.2]
