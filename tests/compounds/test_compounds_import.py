import io

import pytest

from compounds import services
from compounds.models import Assay, Compound, Dataset, DatasetMembership, Measurement, TaskType
from config.exceptions import ValidationFailed
from tests.factories import AssayFactory

pytestmark = pytest.mark.django_db

CSV = b"""name,smiles,logS
ethanol,CCO,1.1
benzene,c1ccccc1,-1.6
kekule-benzene,C1=CC=CC=C1,-1.6
bad,not-a-smiles,0.5
,,
sodium acetate,CC(=O)[O-].[Na+],0.9
no-value,CCCO,abc
"""


@pytest.fixture(params=[True, False], ids=["copy", "orm"])
def use_copy(request):  # type: ignore[no-untyped-def]
    """Every import test runs through both write paths (PostgreSQL COPY and the ORM)."""
    return request.param


@pytest.fixture(autouse=True)
def _path(use_copy, monkeypatch):  # type: ignore[no-untyped-def]
    original = services.compounds_import
    monkeypatch.setattr(services, "compounds_import", lambda **kw: original(use_copy=use_copy, **kw))


def _import(data: bytes, filename: str = "x.csv", **kwargs):  # type: ignore[no-untyped-def]
    return services.compounds_import(stream=io.BytesIO(data), filename=filename, **kwargs)


def test_it_imports_valid_rows_and_reports_each_bad_row():
    assay = AssayFactory(name="logS")
    report = _import(CSV, dataset_name="first", assay=assay, value_column="logS")

    assert report.total_rows == 6  # the ",," line is blank, not a row
    assert report.created == 3  # ethanol, benzene, acetic acid
    assert report.duplicates_in_file == 1
    # Rows are lines of the file, the header being line 1.
    reasons = {issue.row: issue.reason for issue in report.issues}
    assert reasons[4] == "duplicate in file (same structure as line 3): registered once; this row's value is stored as a replicate"
    assert reasons[5] == "unparseable SMILES: syntax error while parsing: not-a-smiles (check for mistakes around position 3)"
    assert 6 not in reasons
    assert reasons[8].startswith("value is not numeric")
    assert report.invalid == 2
    assert Compound.objects.count() == 3
    # The salt was stripped and the acid neutralised.
    assert Compound.objects.filter(canonical_smiles="CC(=O)O").exists()
    # Benzene's two rows (Kekulé and aromatic) are one compound with two measurements.
    assert Measurement.objects.filter(assay=assay).count() == 4
    assert sorted(Measurement.objects.filter(compound__canonical_smiles="c1ccccc1").values_list("value", flat=True)) == [
        -1.6, -1.6
    ]


def test_a_reimport_adds_nothing():
    assay = AssayFactory(name="logS")
    _import(CSV, dataset_name="first", assay=assay, value_column="logS")
    counts = (Compound.objects.count(), Measurement.objects.count(), DatasetMembership.objects.count())

    report = _import(CSV, dataset_name="first", assay=assay, value_column="logS")

    assert report.created == 0
    assert report.existing == 3
    assert report.measurements_created == 0
    assert (Compound.objects.count(), Measurement.objects.count(), DatasetMembership.objects.count()) == counts


def test_classification_values_map_to_class_indices_and_unknown_classes_are_reported():
    assay = AssayFactory(name="cls", task_type=TaskType.CLASSIFICATION, classes=["low", "high"])
    data = b"smiles,label\nCCO,high\nCCCO,low\nCCCCO,medium\n"
    report = _import(data, dataset_name="d", assay=assay, value_column="label")
    assert report.created == 2
    assert sorted(Measurement.objects.values_list("value", flat=True)) == [0.0, 1.0]
    assert "not one of the classes" in report.issues[0].reason


def test_smi_and_sdf_files_are_read():
    report = _import(b"CCO ethanol\n\nc1ccccc1 benzene\n", filename="x.smi", dataset_name="smi")
    assert report.created == 2
    assert Compound.objects.get(canonical_smiles="CCO").name == "ethanol"

    sdf = (
        b"aspirin\n  RDKit\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\n"
        b"    0.0000    0.0000    0.0000 C   0  0\n    1.0000    0.0000    0.0000 C   0  0\n"
        b"    2.0000    0.0000    0.0000 O   0  0\n  1  2  1  0\n  2  3  1  0\nM  END\n$$$$\n"
        b"broken\n  nonsense block\n$$$$\n"
    )
    report = _import(sdf, filename="x.sdf", dataset_name="sdf")
    assert report.existing + report.created == 1
    assert report.invalid == 1
    assert report.issues[0].row == 2  # SDF rows are record numbers
    assert report.issues[0].reason.startswith("unreadable SDF record 2 ('broken'): ")


def test_a_file_without_smiles_column_is_refused_and_writes_nothing():
    with pytest.raises(ValidationFailed, match="no SMILES column"):
        _import(b"a,b\n1,2\n", dataset_name="nothing")
    assert Compound.objects.count() == 0


def test_a_file_refused_after_chunks_were_written_writes_nothing():
    # The refusal comes after two-row chunks of good rows were written (compounds, the new
    # assay, values, the dataset): one transaction, so none of it stays.
    body = b"smiles,name,v\n" + b"".join(b"%s,n%d,%d\n" % (s, i, i) for i, s in enumerate([b"CCO", b"CCN", b"CCCl", b"c1ccccc1"]))
    body += b"CCC," + b"x" * 140_000 + b",3\n"
    with pytest.raises(ValidationFailed, match="line 6: a cell is longer"):
        _import(body, dataset_name="late refusal", new_assay={"name": "late", "task_type": "regression"}, value_column="v", chunk_size=2)
    assert not Compound.objects.exists() and not Measurement.objects.exists()
    assert not Dataset.objects.filter(name="late refusal").exists() and not Assay.objects.filter(name="late").exists()


def test_unsupported_file_type_is_refused():
    with pytest.raises(ValidationFailed, match="unsupported file type"):
        _import(b"xx", filename="x.xlsx", dataset_name="d")


def test_wrong_encoding_bytes_do_not_abort_the_file():
    data = "smiles,name\nCCO,caf\xe9\nCCCO,ok\n".encode("latin-1")
    report = _import(data, dataset_name="latin")
    assert report.created == 2


def test_large_import_uses_worker_processes_and_keeps_order_of_rows():
    lines = ["smiles,name"] + [f"{'C' * (i % 30 + 1)}{'O' * (i // 30 + 1)},m{i}" for i in range(300)]
    report = _import(
        "\n".join(lines).encode(), dataset_name="big", processes=2, chunk_size=50
    )
    # 300 rows → 300 distinct molecules (different chain length / oxygen count).
    assert report.created == 300
    assert Compound.objects.get(name="m0").canonical_smiles == "CO"


def test_compound_register_returns_existing_for_the_same_structure():
    first, created = services.compound_register(smiles="OCC", name="ethanol")
    again, created_again = services.compound_register(smiles="CCO")
    assert created is True
    assert created_again is False
    assert first.pk == again.pk


def test_compound_register_refuses_invalid_smiles():
    with pytest.raises(ValidationFailed, match="Invalid structure"):
        services.compound_register(smiles="C1CC")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "", "abc", True])
def test_non_finite_or_non_numeric_values_are_refused(value):  # type: ignore[no-untyped-def]
    assay = AssayFactory()
    with pytest.raises(ValidationFailed):
        services.parse_measurement_value(assay, value)


def test_names_with_tabs_newlines_backslashes_and_nul_are_stored_on_one_line():
    # A name is one line (an SDF title, a table cell): breaks and tabs become spaces, NUL goes.
    data = b'smiles,name\nCCO,"a\tb\\c\nd\x00e"\nCCCO,"\r\n$$$$\n"\n'
    report = _import(data, dataset_name="odd")
    assert report.created == 2
    assert list(Compound.objects.order_by("id").values_list("name", flat=True)) == ["a b\\c de", "$$$$"]
