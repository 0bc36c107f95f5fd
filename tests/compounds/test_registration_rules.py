"""Registration identity rules (compounds.chemistry, no database): what a structure is
registered as, what is refused and why, and that the rules for ordinary organic compounds
did not move (a re-import of an old file must find its compounds again)."""

import io

import pytest
from rdkit import Chem

from compounds.chemistry import (
    ChemistryError,
    depict_svg,
    parse_smiles,
    process_smiles,
    read_rows,
    sdf_records,
    standardize,
)

# Canonical SMILES and InChIKeys as registered before these rules were written (computed
# with the previous chemistry module): these must never change.
PINNED = [
    ("CC(=O)Oc1ccccc1C(=O)[O-].[Na+]", "CC(=O)Oc1ccccc1C(=O)O", "BSYNRYMUTXBXSQ-UHFFFAOYSA-N"),
    ("C[NH+](C)CCC(c1ccccc1)c1ccccn1.[Cl-]", "CN(C)CCC(c1ccccc1)c1ccccn1", "IJHNSHDBIRRJRN-UHFFFAOYSA-N"),
    ("[NH3+]CC(=O)[O-]", "NCC(=O)O", "DHMQDGOQFOQNFH-UHFFFAOYSA-N"),
    ("C[N+](C)(C)CC(O)CC(=O)[O-]", "C[N+](C)(C)CC(O)CC(=O)[O-]", "PHIQHXFUZVPYII-UHFFFAOYSA-N"),
    ("C[n+]1ccccc1.[I-]", "C[n+]1ccccc1", "PQBAWAQIRZIWIV-UHFFFAOYSA-N"),
    ("[O-][n+]1ccccc1", "[O-][n+]1ccccc1", "ILVXOBCQQYKLDS-UHFFFAOYSA-N"),
    ("c1cc[n-]c1.[K+]", "c1cc[nH]c1", "KAESVJOAVNADME-UHFFFAOYSA-N"),
    ("C[C@H](N)C(=O)O", "C[C@H](N)C(=O)O", "QNAYBMKLOCPYGJ-REOHCLBHSA-N"),
    ("C[C@@H](N)C(=O)O", "C[C@@H](N)C(=O)O", "QNAYBMKLOCPYGJ-UWTATZPHSA-N"),
    ("F/C=C/F", "F/C=C/F", "WFLOTYSKFUPZQB-OWOJBTEDSA-N"),
    ("F/C=C\\F", "F/C=C\\F", "WFLOTYSKFUPZQB-UPHRSURJSA-N"),
    ("C[C@H]1CC[C@@H](C)CC1", "C[C@H]1CC[C@@H](C)CC1", "QRMPKOFEUHIBNM-OCAPTIKFSA-N"),
    ("N[C@@H](Cc1ccccc1)C(=O)[O-].[Na+]", "N[C@@H](Cc1ccccc1)C(=O)O", "COLNVLDHVKWLRT-QMMMGPOBSA-N"),
    ("[13CH3]O", "[13CH3]O", "OKKJLVBELUTLKV-OUBTZVSYSA-N"),
    ("[2H]C([2H])([2H])O", "[2H]C([2H])([2H])O", "OKKJLVBELUTLKV-FIBGUPNXSA-N"),
]


@pytest.mark.parametrize(("smiles", "canonical", "inchikey"), PINNED)
def test_ordinary_salts_charges_and_stereo_are_registered_as_before(smiles: str, canonical: str, inchikey: str) -> None:
    rec = process_smiles(smiles)
    assert (rec.canonical_smiles, rec.inchikey) == (canonical, inchikey)


def test_the_cyclopentadienyl_anion_is_stored_as_a_smiles_that_reads_back() -> None:
    rec = process_smiles("[CH-]1C=CC=C1")
    # Was "c1cccc1" (unreadable) with cyclopentadiene's key: the conjugate acid, written so it parses.
    assert rec.canonical_smiles == "C1=CCC=C1"
    assert Chem.MolToInchiKey(Chem.MolFromSmiles(rec.canonical_smiles)) == rec.inchikey


@pytest.mark.parametrize(
    "smiles",
    [s for s, _, _ in PINNED] + ["[CH-]1C=CC=C1", "CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"],
)
def test_every_registered_canonical_smiles_reads_back_to_its_inchikey(smiles: str) -> None:
    rec = process_smiles(smiles)
    again = Chem.MolFromSmiles(rec.canonical_smiles)
    assert again is not None
    assert Chem.MolToInchiKey(again) == rec.inchikey


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("[Na+].[Cl-]", "inorganic structure (no carbon atom)"),  # was registered as HCl
        ("[NH4+].[Cl-]", "inorganic structure (no carbon atom)"),  # was ammonia
        ("O", "inorganic structure (no carbon atom)"),
        ("N.N.Cl[Pt]Cl", "metal-containing structure (Pt)"),  # cisplatin: was ammonia
        ("N->[Pt](<-N)(Cl)Cl", "metal-containing structure (Pt)"),  # was "InChIKey could not be computed"
        ("[CH-]1C=CC=C1.[CH-]1C=CC=C1.[Fe+2]", "metal-containing structure (Fe)"),  # ferrocene: was "c1cccc1"
        ("C[Hg]Cl", "metal-containing structure (Hg)"),
        ("CC(=O)O[Na]", "Na is bonded to the molecule: write a salt as separate ions"),
    ],
)
def test_inorganic_and_metal_containing_inputs_are_refused_rather_than_given_a_wrong_parent(
    smiles: str, reason: str
) -> None:
    with pytest.raises(ChemistryError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        process_smiles(smiles)
    # Prediction by SMILES uses the same rules as registration.
    with pytest.raises(ChemistryError):
        standardize(parse_smiles(smiles))


def test_alkali_and_alkaline_earth_counterions_are_still_stripped() -> None:
    assert process_smiles("OC(=O)CC(O)(CC(=O)[O-])C(=O)[O-].[Ca+2]").canonical_smiles == "O=C(O)CC(O)(CC(=O)O)C(=O)O"
    assert process_smiles("CC(=O)[O-].[Na+]").canonical_smiles == "CC(=O)O"


def test_racemic_and_relative_stereo_groups_are_registered_as_undefined_stereo() -> None:
    drawn = process_smiles("C[C@H](O)CC")
    racemic = process_smiles("C[C@H](O)CC |&1:1|")
    relative = process_smiles("C[C@H](O)C[C@H](C)O |o1:1,4|")
    assert racemic.canonical_smiles == "CCC(C)O" != drawn.canonical_smiles
    assert racemic.inchikey == process_smiles("CCC(C)O").inchikey
    assert "@" not in relative.canonical_smiles
    # Absolute groups keep the stereo.
    assert process_smiles("C[C@H](O)CC |a:1|").inchikey == drawn.inchikey


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("C1CC", "unparseable SMILES: unclosed ring"),
        ("C(C)(C)(C)(C)C", "unparseable SMILES: valence error: explicit valence for atom # 0 C, 5, is greater than permitted"),
        ("c1cccc1", "unparseable SMILES: kekulization failed (Unkekulized atoms: 0 1 2 3 4)"),
        ("[Zz]C", "unparseable SMILES: syntax error while parsing: [Zz]C (check for mistakes around position 2)"),
    ],
)
def test_an_unparseable_smiles_gets_rdkits_specific_reason(smiles: str, reason: str) -> None:
    with pytest.raises(ChemistryError) as exc:
        process_smiles(smiles)
    assert str(exc.value).startswith(reason)


def test_an_unreadable_stored_smiles_still_gets_an_sdf_record_saying_why() -> None:
    text = "".join(sdf_records([("c1cccc1", {"id": 7, "name": "old ferrocene row"}), ("CCO", {"id": 8, "name": "ok"})]))
    records = text.split("$$$$\n")[:-1]
    assert len(records) == 2
    assert records[0].startswith("old ferrocene row\n")
    assert ">  <structure_error>\nthe stored SMILES does not parse (kekulization failed" in records[0]
    with pytest.raises(ChemistryError):
        depict_svg("c1cccc1")


# --- Readers ------------------------------------------------------------------------------


def _rows(data: bytes, fmt: str, **kw: object) -> list:
    return list(read_rows(io.BytesIO(data), fmt, **kw))  # type: ignore[arg-type]


def test_rows_are_physical_lines_and_blank_lines_are_not_rows() -> None:
    # From the QA file rows.csv: a quoted two-line name, a blank line, an all-empty row.
    data = (
        b'name,smiles,pIC50\n"multi\nline name",CCOc1ccccc1C(=O)N,5.1\ngood2,CCOc1ccccc1C(=O)NC,5.2\n\n'
        b'"a ""quoted"" name",CCOc1ccccc1C(=O)NCC,5.4\nnameonly\n,,\n'
    )
    rows = _rows(data, "csv", value_column="pIC50")
    assert [r.row for r in rows] == [2, 4, 6, 7]
    assert rows[0].name == "multi line name"
    assert rows[0].note == (
        "a quoted cell runs from line 2 to line 3 (stored on one line); if the rows after it are missing, "
        "a closing quote is missing"
    )
    assert rows[2].name == 'a "quoted" name' and rows[2].note is None
    assert rows[3].error == "missing SMILES field"


def test_an_unterminated_quote_is_flagged_on_the_row_that_swallowed_the_rest() -> None:
    data = b'smiles,name\nCCCCCCCCOc1ccccc1,octoxy\nCCCCCCCCCOc1ccccc1,"nonoxy 9in tube\nCCCCCCCCCCOc1ccccc1,decoxy\nCCCCCCCCCCCOc1ccccc1,undecoxy\n'
    rows = _rows(data, "csv")
    assert len(rows) == 2
    assert rows[1].note.startswith("a quoted cell runs from line 3 to line 5")


def test_an_overlong_cell_is_an_error_naming_the_line() -> None:
    data = b"smiles,name\nCCO,ok\nCCC," + b"x" * 140_000 + b"\n"
    with pytest.raises(ChemistryError, match=r"row at line 3: a cell is longer than 131,072 characters"):
        _rows(data, "csv")


def test_a_semicolon_separated_csv_is_read() -> None:
    rows = _rows(b"smiles;name;pIC50\nCCOc1ccncc1;x;5,5\n", "csv", value_column="pIC50")
    assert (rows[0].smiles, rows[0].name, rows[0].value) == ("CCOc1ccncc1", "x", "5,5")
    # A header with commas stays comma-separated, whatever the cells hold.
    rows = _rows(b"smiles,name\nCCO,a;b\n", "csv")
    assert rows[0].name == "a;b"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_utf16_file_with_a_byte_order_mark_is_decoded(encoding: str) -> None:
    bom = "\ufeff".encode(encoding)
    data = bom + "SMILES,Name\r\nCCCCCCCOc1ccccc1,heptoxy µ\r\n".encode(encoding)
    rows = _rows(data, "csv")
    assert [(r.smiles, r.name, r.row) for r in rows] == [("CCCCCCCOc1ccccc1", "heptoxy µ", 2)]


def test_smi_rows_are_lines() -> None:
    rows = _rows(b"SMILES\tName\nCCOc1ccccc1\tphenetole one\n\nBADSMILES\tbad\n", "smi")
    assert [(r.row, r.smiles) for r in rows] == [(2, "CCOc1ccccc1"), (4, "BADSMILES")]


_V3000_RACEMIC = """racemic_v3000
     RDKit          2D

  0  0  0  0  0  0  0  0  0  0999 V3000
M  V30 BEGIN CTAB
M  V30 COUNTS 10 10 0 0 0
M  V30 BEGIN ATOM
M  V30 1 C -2.598786 0.910390 0.000000 0
M  V30 2 C -1.784753 -0.349511 0.000000 0
M  V30 3 O -2.468842 -1.684435 0.000000 0
M  V30 4 C -0.286630 -0.274487 0.000000 0
M  V30 5 C 0.527404 -1.534388 0.000000 0
M  V30 6 C 2.025526 -1.459364 0.000000 0
M  V30 7 C 2.709615 -0.124440 0.000000 0
M  V30 8 C 1.895582 1.135461 0.000000 0
M  V30 9 C 0.397459 1.060437 0.000000 0
M  V30 10 Cl -0.416575 2.320337 0.000000 0
M  V30 END ATOM
M  V30 BEGIN BOND
M  V30 1 1 2 1 CFG=1
M  V30 2 1 2 3
M  V30 3 1 2 4
M  V30 4 2 4 5
M  V30 5 1 5 6
M  V30 6 2 6 7
M  V30 7 1 7 8
M  V30 8 2 8 9
M  V30 9 1 9 10
M  V30 10 1 9 4
M  V30 END BOND
M  V30 BEGIN COLLECTION
M  V30 MDLV30/STERAC1 ATOMS=(1 2)
M  V30 END COLLECTION
M  V30 END CTAB
M  END
$$$$
"""


def _v2000(name: str, chiral_flag: int) -> str:
    mol = Chem.MolFromSmiles("C[C@H](O)c1ccccc1Cl")
    mol.SetProp("_Name", name)
    block = Chem.MolToMolBlock(mol)
    lines = block.split("\n")
    counts = lines[3]
    lines[3] = counts[:12] + f"{chiral_flag:>3}" + counts[15:]
    return "\n".join(lines) + "$$$$\n"


def test_sdf_racemic_stereo_group_is_undefined_and_noted_while_chiral_flag_0_keeps_the_drawing() -> None:
    data = (_v2000("flag1", 1) + _v2000("flag0", 0) + _V3000_RACEMIC).encode()
    rows = _rows(data, "sdf")
    flag1, flag0, racemic = rows
    assert flag1.smiles == flag0.smiles == "C[C@H](O)c1ccccc1Cl"
    assert flag0.note is None
    assert racemic.smiles == "CC(O)c1ccccc1Cl"
    assert racemic.note.startswith("racemic or relative stereo (an AND/OR stereo group) at atom(s) 2: registered with")


def test_an_unreadable_sdf_record_names_its_number_title_and_rdkits_reason() -> None:
    # A carbon with five bonds: the molfile parses, sanitisation refuses it.
    five = Chem.RWMol(Chem.MolFromSmiles("CC(C)(C)C"))
    five.AddAtom(Chem.Atom(6))
    five.AddBond(1, 5, Chem.BondType.SINGLE)
    block = Chem.MolToMolBlock(five, kekulize=False)
    data = ("first\n" + block.split("\n", 1)[1] + "$$$$\n").encode()
    [row] = _rows(data, "sdf")
    assert row.row == 1
    assert row.error.startswith("unreadable SDF record 1 ('first'): Explicit valence for atom # 1 C, 5")


def test_sdf_fields_seen_are_collected_for_the_missing_field_check() -> None:
    mol = Chem.MolFromSmiles("CCO")
    block = Chem.MolToMolBlock(mol) + ">  <pIC50>\n5.1\n\n$$$$\n"
    seen: set[str] = set()
    rows = _rows(block.encode(), "sdf", value_column="PIC50", sdf_fields=seen)
    assert rows[0].value is None
    assert seen == {"pIC50"}
