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
    assert "row 2: unparseable SMILES" in out
    assert Measurement.objects.get().value == 1.1


def test_deferred_properties_are_filled_now_without_redis(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.JOBS_IN_PROCESS = True
    f = tmp_path / "in.smi"
    f.write_text("CCO a\nCCCO b\n")
    call_command("import_compounds", str(f), "--dataset", "d", "--properties", "deferred")
    assert not Compound.objects.filter(mw__isnull=True).exists()
