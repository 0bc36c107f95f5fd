"""What an import does with value cells, duplicate rows, SDF fields and malformed files
(both write paths: PostgreSQL COPY and the ORM)."""

import io

import pytest

from compounds import services
from compounds.models import Assay, Compound, Measurement
from config.exceptions import ValidationFailed
from tests.factories import AssayFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["copy", "orm"])
def use_copy(request):  # type: ignore[no-untyped-def]
    return request.param


def _import(data: bytes, use_copy: bool, filename: str = "x.csv", **kwargs):  # type: ignore[no-untyped-def]
    return services.compounds_import(stream=io.BytesIO(data), filename=filename, use_copy=use_copy, **kwargs)


# The QA file vals.csv: one good value, censored, ranged, with units, empty, NA, n.d.,
# a decimal comma, an exponent, padding, -inf and "≥ 6".
VALS = """smiles,name,pIC50
c1ccc(cc1)C(=O)Nc1ccccc1,benzanilide,6.5
Cc1ccc(cc1)C(=O)Nc1ccccc1,tolanilide,>10
Clc1ccc(cc1)C(=O)Nc1ccccc1,clanilide,<0.1
Brc1ccc(cc1)C(=O)Nc1ccccc1,branilide,~5
Ic1ccc(cc1)C(=O)Nc1ccccc1,ianilide,1-2
Fc1ccc(cc1)C(=O)Nc1ccccc1,fanilide,5 uM
Oc1ccc(cc1)C(=O)Nc1ccccc1,oanilide,
Nc1ccc(cc1)C(=O)Nc1ccccc1,nanilide,NA
COc1ccc(cc1)C(=O)Nc1ccccc1,moanilide,n.d.
CCc1ccc(cc1)C(=O)Nc1ccccc1,eanilide,"5,5"
CCCc1ccc(cc1)C(=O)Nc1ccccc1,panilide,1.5e-3
CCCCc1ccc(cc1)C(=O)Nc1ccccc1,banilide," 7.25 "
CSc1ccc(cc1)C(=O)Nc1ccccc1,msanilide,-inf
N#Cc1ccc(cc1)C(=O)Nc1ccccc1,cnanilide,≥ 6
""".encode()


def test_unmeasured_and_censored_rows_register_the_structure_without_a_value(use_copy):  # type: ignore[no-untyped-def]
    assay = AssayFactory(name="pIC50")
    report = _import(VALS, use_copy, dataset_name="vals", assay=assay, value_column="pIC50")

    assert report.total_rows == 14
    assert report.created == 13  # all but the decimal comma, a wrong value (-inf is no value, like NaN)
    assert report.invalid == 1
    assert report.values_skipped == 10
    assert report.measurements_created == 3  # 6.5, 1.5e-3, 7.25
    reasons = {issue.row: (issue.kind, issue.reason) for issue in report.issues}
    assert reasons[3] == (
        "value_skipped", "censored value '>10': qualifiers are not stored, the compound is registered without a value"
    )
    assert reasons[15] == (
        "value_skipped", "censored value '≥ 6': qualifiers are not stored, the compound is registered without a value"
    )
    assert reasons[6] == ("value_skipped", "range '1-2' is not a single value: the compound is registered without a value")
    assert reasons[7][1].startswith("value '5 uM' has units in the cell")
    assert reasons[8] == ("value_skipped", "no value (empty cell): the compound is registered without a value")
    assert reasons[9] == ("value_skipped", "no value ('NA'): the compound is registered without a value")
    assert reasons[10] == ("value_skipped", "no value ('n.d.'): the compound is registered without a value")
    assert reasons[11][0] == "rejected" and "decimal point" in reasons[11][1]
    assert reasons[14] == ("value_skipped", "'-inf' is not a finite number: the compound is registered without a value")
    assert Compound.objects.filter(name="tolanilide").exists()
    assert not Measurement.objects.filter(compound__name="tolanilide").exists()


def test_an_sdf_record_without_the_field_and_one_with_it_empty_are_both_registered_without_a_value(use_copy):  # type: ignore[no-untyped-def]
    from rdkit import Chem

    def record(smiles: str, name: str, value: str | None) -> str:
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("_Name", name)
        block = Chem.MolToMolBlock(mol)
        if value is not None:
            block += f">  <pIC50>\n{value}\n\n"
        return block + "$$$$\n"

    data = (record("CCOc1ccccc1", "has", "5.1") + record("CCCOc1ccccc1", "empty", "") + record("CCCCOc1ccccc1", "none", None))
    assay = AssayFactory(name="pIC50")
    report = _import(data.encode(), use_copy, filename="x.sdf", dataset_name="sdf", assay=assay, value_column="pIC50")
    assert (report.created, report.invalid, report.values_skipped, report.measurements_created) == (3, 0, 2, 1)
    assert [(i.row, i.reason) for i in report.issues] == [
        (2, "no value (empty cell): the compound is registered without a value"),
        (3, "no value (no such cell or field): the compound is registered without a value"),
    ]


def test_an_sdf_value_field_that_no_record_has_is_refused_listing_the_fields(use_copy):  # type: ignore[no-untyped-def]
    from rdkit import Chem

    data = (Chem.MolToMolBlock(Chem.MolFromSmiles("CCO")) + ">  <pIC50>\n5.1\n\n>  <ID>\nA1\n\n$$$$\n").encode()
    assay = AssayFactory(name="pIC50")
    with pytest.raises(ValidationFailed) as exc:
        _import(data, use_copy, filename="x.sdf", dataset_name="sdf", assay=assay, value_column="PIC50")
    assert exc.value.message == (
        "value field 'PIC50' is in no SDF record (did you mean 'pIC50'?); the records' data fields are: ID, pIC50"
    )
    assert not Compound.objects.exists()


def test_every_duplicate_rows_value_is_stored_and_a_reimport_adds_none(use_copy):  # type: ignore[no-untyped-def]
    # rows.csv: the salt form and a replicate of the same compound; chunks of two rows so the
    # replicates fall into different chunks.
    data = (
        b"name,smiles,pIC50\ngood2,CCOc1ccccc1C(=O)NC,5.2\nother,CCOc1ccccc1C(=O)N,5.1\n"
        b"salt,CCOc1ccccc1C(=O)NC.Cl,6.0\nrepl,CCOc1ccccc1C(=O)NC,5.25\nsame,CCOc1ccccc1C(=O)NC,5.2\n"
    )
    assay = AssayFactory(name="pIC50")
    report = _import(data, use_copy, dataset_name="d", assay=assay, value_column="pIC50", chunk_size=2)
    assert (report.created, report.duplicates_in_file, report.invalid, report.measurements_created) == (2, 3, 0, 5)
    kept = Measurement.objects.filter(compound__name="good2").values_list("value", flat=True)
    assert sorted(kept) == [5.2, 5.2, 5.25, 6.0]
    duplicate = next(i for i in report.issues if i.row == 4)
    assert duplicate.kind == "duplicate"
    assert duplicate.reason == (
        "duplicate in file (same structure as line 2): registered once; this row's value is stored as a replicate"
    )

    again = _import(data, use_copy, dataset_name="d", assay=assay, value_column="pIC50", chunk_size=2)
    assert again.measurements_created == 0
    assert Measurement.objects.count() == 5


def test_a_second_file_with_a_new_value_adds_a_measurement_and_one_with_the_same_value_does_not(use_copy):  # type: ignore[no-untyped-def]
    assay = AssayFactory(name="pIC50")
    _import(b"smiles,v\nCCOc1ccccc1C(=O)NC,5.2\n", use_copy, dataset_name="a", assay=assay, value_column="v")
    assert _import(b"smiles,v\nCCOc1ccccc1C(=O)NC,5.3\n", use_copy, dataset_name="b", assay=assay, value_column="v").measurements_created == 1
    assert _import(b"smiles,v\nCCOc1ccccc1C(=O)NC,5.2\n", use_copy, dataset_name="c", assay=assay, value_column="v").measurements_created == 0


def test_a_thousands_separator_is_called_ambiguous_and_a_unicode_minus_is_a_minus(use_copy):  # type: ignore[no-untyped-def]
    data = 'smiles,name,ic50_nM\nCCCCCCCCCCCCCCCCCOc1ccccc1,thousand,"1,234"\nCCCCCCCCCCCCCCCCCCOc1ccccc1,minus,\u22125.2\n'
    assay = AssayFactory(name="ic50")
    report = _import(data.encode(), use_copy, dataset_name="d", assay=assay, value_column="ic50_nM")
    [issue] = report.issues
    assert issue.reason == (
        "value '1,234': the comma could be a decimal comma (1.234) or a thousands separator (1234); "
        "write the number with a decimal point and no separators ('1,234')"
    )
    assert Measurement.objects.get().value == -5.2


def test_a_semicolon_csv_and_a_utf16_csv_import(use_copy):  # type: ignore[no-untyped-def]
    report = _import(b"smiles;name\nCCOc1ccncc1;x\n", use_copy, dataset_name="semi")
    assert report.created == 1 and Compound.objects.get().name == "x"
    utf16 = "\ufeffSMILES,Name\r\nCCCCCCCOc1ccccc1,heptoxy\r\n".encode("utf-16-le")
    assert _import(utf16, use_copy, dataset_name="u16").created == 1
    assert Compound.objects.filter(name="heptoxy").exists()


def test_an_overlong_cell_is_a_validation_error_naming_the_line_and_writes_nothing(use_copy):  # type: ignore[no-untyped-def]
    data = b"smiles,name\nCCO,ok\nCCC," + b"x" * 140_000 + b"\n"
    with pytest.raises(ValidationFailed, match=r"row at line 3: a cell is longer than 131,072 characters"):
        _import(data, use_copy, dataset_name="huge")
    assert not Compound.objects.exists()


def test_inorganic_and_metal_rows_are_rejected_with_their_reason(use_copy):  # type: ignore[no-untyped-def]
    data = b"smiles,name\n[Na+].[Cl-],salt\nN.N.Cl[Pt]Cl,cisplatin\n[CH-]1C=CC=C1.[CH-]1C=CC=C1.[Fe+2],ferrocene\nCCO,ethanol\n"
    report = _import(data, use_copy, dataset_name="d")
    assert report.created == 1 and report.invalid == 3
    assert [i.reason.split(":")[0] for i in report.issues] == [
        "inorganic structure (no carbon atom)", "metal-containing structure (Pt)", "metal-containing structure (Fe)"
    ]


def test_a_new_assay_whose_values_were_all_skipped_is_not_kept_but_the_compounds_are(use_copy):  # type: ignore[no-untyped-def]
    report = _import(
        b"smiles,v\nCCO,>5\nCCCO,NA\n", use_copy, dataset_name="d", new_assay={"name": "fresh"}, value_column="v"
    )
    assert report.created == 2 and report.values_skipped == 2 and report.assay_removed
    assert not Assay.objects.filter(name="fresh").exists()
