"""Unit tests for compounds.chemistry: no database, no Django (run with or without -p no:django)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen, Descriptors, rdFingerprintGenerator, rdMolDescriptors

from compounds.chemistry import (
    FP_BYTES,
    ChemistryError,
    StandardizedCompound,
    compute_properties,
    csv_safe,
    detect_format,
    fingerprint_bytes,
    fingerprints_to_matrix,
    packed_to_csr,
    parse_smiles,
    process_smiles,
    process_smiles_batch,
    read_rows,
    sdf_records,
    single_line,
    standardize,
    tanimoto,
    top_k_similar,
    unpack_bits,
)

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
CAFFEINE = "Cn1c(=O)c2c(ncn2C)n(C)c1=O"


# --- Standardisation ----------------------------------------------------------


def test_salt_is_stripped_and_charge_neutralised() -> None:
    parent = process_smiles(ASPIRIN)
    salt = process_smiles("CC(=O)Oc1ccccc1C(=O)[O-].[Na+]")
    assert salt.canonical_smiles == parent.canonical_smiles == "CC(=O)Oc1ccccc1C(=O)O"
    assert salt.inchikey == parent.inchikey
    assert salt.smiles == "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]"  # the submitted text is kept


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("C[NH3+].[Cl-]", "CN"),
        ("[NH3+]CC(=O)[O-]", "NCC(=O)O"),  # zwitterion: one fragment, charges only
        ("Cl.OCCN", "NCCO"),  # the organic fragment wins over a bigger-looking salt
        ("C[N+](C)(C)C.[I-]", "C[N+](C)(C)C"),  # a quaternary N cannot be neutralised
        ("C1.C1", "CC"),  # a "." bridged by a ring closure is still one molecule
    ],
)
def test_standardisation_cases(raw: str, expected: str) -> None:
    assert process_smiles(raw).canonical_smiles == expected


def test_public_standardize_matches_process_smiles() -> None:
    mol = standardize(parse_smiles("CC(=O)Oc1ccccc1C(=O)[O-].[Na+]"))
    assert Chem.MolToSmiles(mol) == process_smiles(ASPIRIN).canonical_smiles


def test_stereo_is_kept() -> None:
    l_ala = process_smiles("C[C@H](N)C(=O)O")
    d_ala = process_smiles("C[C@@H](N)C(=O)O")
    assert "@" in l_ala.canonical_smiles
    assert l_ala.canonical_smiles != d_ala.canonical_smiles
    assert l_ala.inchikey != d_ala.inchikey
    trans, cis = process_smiles("F/C=C/F"), process_smiles("F/C=C\\F")
    assert trans.inchikey != cis.inchikey
    assert "/" in trans.canonical_smiles


@pytest.mark.parametrize(
    ("kekule", "aromatic"),
    [
        ("C1=CC=CC=C1C(=O)O", "c1ccccc1C(=O)O"),
        ("CN1C=NC2=C1C(=O)N(C)C(=O)N2C", CAFFEINE),
        ("C1=CC=C2C(=C1)C=CN2", "c1ccc2[nH]ccc2c1"),
    ],
)
def test_kekule_and_aromatic_forms_are_equal(kekule: str, aromatic: str) -> None:
    a, b = process_smiles(kekule), process_smiles(aromatic)
    assert a.canonical_smiles == b.canonical_smiles
    assert a.inchikey == b.inchikey
    assert a.fingerprint == b.fingerprint
    assert a.properties() == b.properties()


# --- Invalid input ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (None, "empty"),
        ("not a smiles", "unparseable"),
        ("C1CC", "unparseable"),  # unclosed ring
        ("c1cccc1", "unparseable"),  # cannot be kekulised
        ("C" * 10_000, "longer than"),
        ("C" * 1_001, "too large"),  # short enough to parse, too many atoms to register
    ],
)
def test_invalid_input_raises(raw: str | None, message: str) -> None:
    with pytest.raises(ChemistryError, match=message):
        process_smiles(raw)  # type: ignore[arg-type]


def test_chemistry_error_is_a_value_error() -> None:
    assert issubclass(ChemistryError, ValueError)


def test_batch_returns_errors_in_place_and_reuses_duplicates() -> None:
    out = process_smiles_batch([ASPIRIN, "nonsense", "", f" {ASPIRIN} ", "CCO"])
    assert len(out) == 5
    assert isinstance(out[0], StandardizedCompound)
    assert isinstance(out[1], ChemistryError)
    assert isinstance(out[2], ChemistryError)
    assert out[3] is out[0]  # same stripped text: computed once
    assert out[0] == process_smiles(ASPIRIN)
    assert isinstance(out[4], StandardizedCompound)
    assert out[4].canonical_smiles == "CCO"
    assert process_smiles_batch([]) == []


# --- Properties ---------------------------------------------------------------

# Values from RDKit 2026.09 (MolWt, Crippen MolLogP, TPSA, CalcNumHBD/HBA,
# strict rotatable bonds), rounded as stored.
REFERENCE = {
    ASPIRIN: {"mw": 180.159, "clogp": 1.31, "tpsa": 63.6, "hbd": 1, "hba": 3, "rotatable_bonds": 2, "heavy_atoms": 13},
    CAFFEINE: {"mw": 194.194, "clogp": -1.029, "tpsa": 61.82, "hbd": 0, "hba": 3, "rotatable_bonds": 0, "heavy_atoms": 14},
    "CCO": {"mw": 46.069, "clogp": -0.001, "tpsa": 20.23, "hbd": 1, "hba": 1, "rotatable_bonds": 0, "heavy_atoms": 3},
}


@pytest.mark.parametrize("smiles", list(REFERENCE))
def test_properties_of_known_molecules(smiles: str) -> None:
    c = process_smiles(smiles)
    assert c.properties() == REFERENCE[smiles]
    assert compute_properties(Chem.MolFromSmiles(smiles)) == REFERENCE[smiles]


@pytest.mark.parametrize("smiles", [*REFERENCE, "c1ccc2[nH]ccc2c1", "O=C(NCc1ccccc1)C1CCN(C)CC1"])
def test_properties_agree_with_rdkit_descriptor_module(smiles: str) -> None:
    mol = Chem.MolFromSmiles(smiles)
    props = process_smiles(smiles).properties()
    assert props["mw"] == round(Descriptors.MolWt(mol), 3)
    assert props["clogp"] == round(Crippen.MolLogP(mol), 3)
    assert props["tpsa"] == round(Descriptors.TPSA(mol), 2)
    assert props["hbd"] == rdMolDescriptors.CalcNumHBD(mol)
    assert props["hba"] == rdMolDescriptors.CalcNumHBA(mol)
    assert props["rotatable_bonds"] == Descriptors.NumRotatableBonds(mol)
    assert props["heavy_atoms"] == mol.GetNumHeavyAtoms()


def test_inchikey_of_known_molecules() -> None:
    assert process_smiles(ASPIRIN).inchikey == "BSYNRYMUTXBXSQ-UHFFFAOYSA-N"
    assert process_smiles(CAFFEINE).inchikey == "RYYVLZVUVIJVGH-UHFFFAOYSA-N"
    assert process_smiles("OCC").inchikey == "LFQSCWFLJHTTHZ-UHFFFAOYSA-N"


# --- Fingerprints and similarity ---------------------------------------------


@pytest.mark.parametrize("smiles", [ASPIRIN, CAFFEINE, "CCO", "C", "c1ccc2[nH]ccc2c1"])
def test_fingerprint_is_packed_morgan_big_endian(smiles: str) -> None:
    # The stored format is np.packbits of the 2048-bit radius-2 Morgan vector.
    mol = Chem.MolFromSmiles(smiles)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    expected = np.packbits(gen.GetFingerprintAsNumPy(mol).astype(np.uint8)).tobytes()
    fp = fingerprint_bytes(mol)
    assert len(fp) == FP_BYTES
    assert fp == expected
    assert process_smiles(smiles).fingerprint == expected


def _fps(*smiles: str) -> np.ndarray:
    return fingerprints_to_matrix([process_smiles(s).fingerprint for s in smiles])


def test_tanimoto_identity_and_order() -> None:
    matrix = _fps("CCO", "CCCO", "c1ccccc1", "CCO")
    sims = tanimoto(matrix[0], matrix)
    assert sims[0] == pytest.approx(1.0)
    assert sims[3] == pytest.approx(1.0)
    assert sims[1] > sims[2]  # propanol is closer to ethanol than benzene is
    assert sims.min() >= 0.0 and sims.max() <= 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_packed_to_csr_is_the_unpacked_bit_matrix(dtype: type) -> None:
    rng = np.random.default_rng(0)
    packed = rng.integers(0, 256, size=(37, FP_BYTES), dtype=np.uint8)
    packed[rng.random(packed.shape) < 0.9] = 0  # sparse like a fingerprint
    packed[5] = 0  # an empty row in the middle
    packed[-1] = 0  # and at the end
    csr = packed_to_csr(packed, dtype)
    assert csr.dtype == dtype and csr.shape == (37, 8 * FP_BYTES)
    np.testing.assert_array_equal(csr.toarray(), unpack_bits(packed))
    assert csr.has_sorted_indices
    assert packed_to_csr(np.zeros((0, FP_BYTES), dtype=np.uint8)).shape == (0, 8 * FP_BYTES)


def test_top_k_similar_best_first_ties_by_index() -> None:
    matrix = _fps("c1ccccc1", "CCO", "CCCO", "CCO")
    query = _fps("CCO")[0]
    top = top_k_similar(query, matrix, 3)
    assert [i for i, _ in top] == [1, 3, 2]
    assert top[0][1] == pytest.approx(1.0)
    assert top[0][1] >= top[1][1] >= top[2][1]
    assert len(top_k_similar(query, matrix, 99)) == 4
    assert top_k_similar(query, matrix, 0) == []
    assert top_k_similar(query, fingerprints_to_matrix([]), 5) == []


def test_empty_fingerprint_has_zero_similarity() -> None:
    zero = np.zeros((1, FP_BYTES), dtype=np.uint8)
    assert tanimoto(zero[0], zero)[0] == 0.0


# --- File readers -------------------------------------------------------------


def _rows(data: bytes, fmt: str, **kw: str) -> list:
    return list(read_rows(io.BytesIO(data), fmt, **kw))


def test_csv_reader_columns_empty_lines_and_bom() -> None:
    data = "\ufeffName,SMILES,pIC50\naspirin,CC(=O)Oc1ccccc1C(=O)O,5.1\n\n,,\nethanol,CCO,\n".encode()
    rows = _rows(data, "csv", value_column="pIC50")
    # Rows are the lines of the file (header = line 1); blank lines and all-empty rows are skipped.
    assert [r.row for r in rows] == [2, 5]
    assert (rows[0].name, rows[0].smiles, rows[0].value) == ("aspirin", ASPIRIN, "5.1")
    assert (rows[1].smiles, rows[1].value) == ("CCO", "")
    assert not any(r.error for r in rows)


def test_tsv_reader_and_short_rows() -> None:
    rows = _rows(b"id\tsmiles\nA1\tCCO\nA2\n", "tsv")
    assert (rows[0].name, rows[0].smiles) == ("A1", "CCO")
    assert rows[1].error == "missing SMILES field"


def test_csv_reader_errors() -> None:
    with pytest.raises(ChemistryError, match="empty"):
        _rows(b"", "csv")
    with pytest.raises(ChemistryError, match="no SMILES column"):
        _rows(b"a,b\n1,2\n", "csv")
    with pytest.raises(ChemistryError, match="not found"):
        _rows(b"smiles\nCCO\n", "csv", value_column="pIC50")
    with pytest.raises(ChemistryError, match="unsupported format"):
        _rows(b"", "xlsx")


def test_bytes_that_are_not_utf8_are_read_as_windows_1252_and_counted() -> None:
    from compounds.chemistry import counting_decode_fallbacks

    # A Latin-1 / Windows-1252 export (é = 0xE9, µ = 0xB5) mixed with real UTF-8 (ü).
    data = b"smiles,name\nCCO,caf\xe9\nC\xff\x81C,bad\nCCN,\xb5M stock\nCCCl,d\xc3\xbcnn\n"
    with counting_decode_fallbacks() as counter:
        rows = _rows(data, "csv")
    assert [r.name for r in rows] == ["café", "bad", "µM stock", "dünn"]
    assert counter.count == 4  # é, ÿ, 0x81, µ
    # 0x81 is undefined in Windows-1252: that row's SMILES cannot parse and is reported, not imported.
    assert rows[1].smiles == "Cÿ\ufffdC"
    with pytest.raises(ChemistryError):
        process_smiles(rows[1].smiles)
    assert rows[2].smiles == "CCN"


def test_smi_reader_header_names_and_empty_lines() -> None:
    rows = _rows(b"SMILES Name\nCCO ethanol\n\nc1ccccc1 benzene ring\nCCN\n", "smi")
    assert [(r.smiles, r.name) for r in rows if r.error is None] == [
        ("CCO", "ethanol"),
        ("c1ccccc1", "benzene ring"),
        ("CCN", ""),
    ]
    assert [r.row for r in rows] == [2, 4, 5]  # lines of the file; the blank line is skipped
    assert not any(r.error for r in rows)


def _molblock(smiles: str, name: str, **props: str) -> str:
    mol = Chem.MolFromSmiles(smiles)
    mol.SetProp("_Name", name)
    block = Chem.MolToMolBlock(mol)
    for key, value in props.items():
        block += f">  <{key}>\n{value}\n\n"
    return block + "$$$$\n"


def test_sdf_reader_reports_broken_block_and_continues() -> None:
    broken = "broken\n  junk\n\n  this is not a counts line\nM  END\n$$$$\n"
    data = (_molblock(ASPIRIN, "aspirin", pIC50="5.1") + broken + _molblock("CCO", "ethanol")).encode()
    rows = _rows(data, "sdf", value_column="pIC50")
    assert len(rows) == 3
    assert (rows[0].name, rows[0].value) == ("aspirin", "5.1")
    assert process_smiles(rows[0].smiles).inchikey == process_smiles(ASPIRIN).inchikey
    assert rows[1].error == "unreadable SDF record 2 ('broken'): Cannot convert '  t' to unsigned int on line 4"
    assert (rows[2].name, rows[2].smiles) == ("ethanol", "CCO")


def test_detect_format() -> None:
    assert detect_format("x.CSV") == "csv"
    assert detect_format("x.smi.gz") == "smi"
    assert detect_format("x.sd") == "sdf"
    assert detect_format("x.tsv") == "tsv"
    with pytest.raises(ChemistryError, match="unsupported file type"):
        detect_format("x.xlsx")


# --- Export safety ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-1.5", "-1.5"),  # a plain negative number stays a number
        ("+7", "+7"),
        ("CCO", "CCO"),
        ("", ""),
        (None, ""),
        (3.25, "3.25"),
    ],
)
def test_csv_safe(value: object, expected: str) -> None:
    assert csv_safe(value) == expected


def test_sdf_records_write_every_field_on_one_line_so_a_name_cannot_inject_records() -> None:
    evil = "SDF evil\n$$$$\nINJECTED\n>  <inchikey>\nFAKE"
    text = "".join(sdf_records([("CCO", {"id": 1, "name": evil, "inchikey": "REAL"}), ("C", {"id": 2, "name": "$$$$"})]))
    supplier = Chem.SDMolSupplier()
    supplier.SetData(text)
    mols = list(supplier)
    assert len(mols) == 2 and all(m is not None for m in mols)
    assert mols[0].GetProp("_Name") == mols[0].GetProp("name") == "SDF evil $$$$ INJECTED > <inchikey> FAKE"
    assert mols[0].GetProp("inchikey") == "REAL"
    assert [line for line in text.splitlines() if line.startswith("$$$$")] == ["$$$$", "$$$$"]


def test_single_line_turns_breaks_and_control_characters_into_single_spaces() -> None:
    assert single_line("  a\tb\r\nc\x1b[31m\x85d\u2028e\x00f  ") == "a b c [31m d ef"
