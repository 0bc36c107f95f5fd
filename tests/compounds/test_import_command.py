import pytest
from django.core.management import call_command

from compounds.models import Compound, Measurement

pytestmark = pytest.mark.django_db


def test_the_command_imports_with_values_and_prints_the_report(tmp_path, capsys):  # type: ignore[no-untyped-def]
    f = tmp_path / "in.csv"
    f.write_text("smiles,name,logS\nCCO,ethanol,1.1\nxx,bad,2\n")
    call_command("import_compounds", str(f), "--dataset", "d", "--assay", "logS", "--value-column", "logS")
    out = capsys.readouterr().out
    assert "1 new" in out and "1 rejected" in out
    assert "line 3: unparseable SMILES: syntax error while parsing: xx" in out
    assert Measurement.objects.get().value == 1.1


def test_deferred_properties_are_filled_now_without_redis(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.JOBS_IN_PROCESS = True
    f = tmp_path / "in.smi"
    f.write_text("CCO a\nCCCO b\n")
    call_command("import_compounds", str(f), "--dataset", "d", "--properties", "deferred")
    assert not Compound.objects.filter(mw__isnull=True).exists()


def test_class_names_with_commas_are_given_one_by_one(tmp_path, capsys):  # type: ignore[no-untyped-def]
    from compounds.models import Assay

    f = tmp_path / "sol.csv"
    f.write_text('smiles,sol\nCCO,"soluble, yes ✓"\nCCCCCCCCCC,Ünlöslich  (no)\n', encoding="utf-8")
    call_command(
        "import_compounds", str(f), "--dataset", "d", "--assay", "Sol", "--value-column", "sol",
        "--class", "soluble, yes ✓", "--class", "Ünlöslich  (no)",
    )
    assay = Assay.objects.get(name="Sol")
    assert (assay.task_type, assay.classes) == ("classification", ["soluble, yes ✓", "Ünlöslich  (no)"])
    assert sorted(Measurement.objects.values_list("value", flat=True)) == [0.0, 1.0]
    assert 'classes "soluble, yes ✓", "Ünlöslich  (no)"' in capsys.readouterr().out


def test_comma_separated_classes_that_read_like_names_with_commas_are_refused(tmp_path):  # type: ignore[no-untyped-def]
    from django.core.management.base import CommandError

    from compounds.models import Assay

    f = tmp_path / "sol.csv"
    f.write_text("smiles,sol\nCCO,low\n")
    with pytest.raises(CommandError, match=r'into 3 classes "soluble", "yes ✓", "Ünlöslich  \(no\)".*--class NAME'):
        call_command("import_compounds", str(f), "--dataset", "d", "--assay", "Sol", "--value-column", "sol",
                     "--task", "classification", "--classes", "soluble, yes ✓,Ünlöslich  (no)")
    assert not Assay.objects.exists() and not Compound.objects.exists()
    call_command("import_compounds", str(f), "--dataset", "d", "--assay", "Sol", "--value-column", "sol",
                 "--task", "classification", "--classes", "low,high")
    assert Assay.objects.get(name="Sol").classes == ["low", "high"]
    # A second file for the same assay needs no class options: the assay keeps its own.
    call_command("import_compounds", str(f), "--dataset", "e", "--assay", "Sol", "--value-column", "sol")
    assert Measurement.objects.count() == 1


def test_a_refused_file_leaves_no_new_assay(tmp_path):  # type: ignore[no-untyped-def]
    from django.core.management.base import CommandError

    from compounds.models import Assay

    f = tmp_path / "in.csv"
    f.write_text("smiles,logS\nCCO,1.1\n")
    with pytest.raises(CommandError, match="value column"):
        call_command("import_compounds", str(f), "--dataset", "d", "--assay", "logS", "--value-column", "missing")
    assert not Assay.objects.exists()
