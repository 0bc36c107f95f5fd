"""Every path that registers compounds queues the import follow-ups; the interfaces answer
malformed files with a 400 and old unreadable rows without a 500."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from compounds.models import Compound
from tests.factories import CompoundFactory

pytestmark = pytest.mark.django_db

# The default CHEMLOOP_IMPORT_FOLLOWUPS (test settings turn them off): stored features and
# the substructure screen, one job each for a small file.
FOLLOWUPS = ["mlmodels.services.compound_features_backfill_enqueue", "compounds.services.compound_patterns_backfill_enqueue"]
FOLLOWUP_JOBS = ["compounds.jobs.patterns_range", "mlmodels.jobs.compute_features_range"]
SCREEN = FOLLOWUPS[1:]


def _jobs(queue) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(job.func_name for job in queue.jobs)


def test_registering_one_compound_through_the_api_queues_the_followups(api_for, scientist, rq_queue, settings, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    settings.CHEMLOOP_IMPORT_FOLLOWUPS = FOLLOWUPS
    with django_capture_on_commit_callbacks(execute=True):
        created = api_for(scientist).post("/api/compounds/", {"smiles": "CCOc1ccccc1"}, format="json")
    assert created.status_code == 201
    assert _jobs(rq_queue) == FOLLOWUP_JOBS

    rq_queue.empty()
    with django_capture_on_commit_callbacks(execute=True):
        again = api_for(scientist).post("/api/compounds/", {"smiles": "O(CC)c1ccccc1"}, format="json")
    assert again.status_code == 200 and _jobs(rq_queue) == []  # nothing new, nothing to queue


def test_the_import_command_queues_the_followups_for_a_small_file(tmp_path, rq_queue, settings, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    settings.CHEMLOOP_IMPORT_FOLLOWUPS = FOLLOWUPS
    f = tmp_path / "small.smi"
    f.write_text("CCOc1ccccc1 a\nCCCOc1ccccc1 b\n")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_compounds", str(f), "--dataset", "d")
    assert _jobs(rq_queue) == FOLLOWUP_JOBS


def test_the_import_command_prints_skipped_values_and_a_removed_assay(tmp_path, capsys):  # type: ignore[no-untyped-def]
    f = tmp_path / "vals.csv"
    f.write_text("smiles,v\nCCO,>10\nCCCO,NA\n")
    call_command("import_compounds", str(f), "--dataset", "d", "--assay", "fresh", "--value-column", "v")
    out = capsys.readouterr().out
    assert "2 registered without a value" in out
    assert "no value of the file could be stored, so the new assay 'fresh' was not created" in out
    assert "line 2: censored value '>10': qualifiers are not stored" in out


def test_an_overlong_cell_is_a_400_naming_the_line_on_the_api_and_the_page(api_for, client_for, lead):  # type: ignore[no-untyped-def]
    body = b"smiles,name\nCCO,ok\nCCC," + b"x" * 140_000 + b"\n"
    upload = io.BytesIO(body)
    upload.name = "huge.csv"
    response = api_for(lead).post("/api/compounds/import/", {"file": upload, "dataset": "huge"}, format="multipart")
    assert response.status_code == 400, response.content[:300]
    assert "row at line 3: a cell is longer than 131,072 characters" in response.content.decode()

    upload = io.BytesIO(body)
    upload.name = "huge.csv"
    page = client_for(lead).post(reverse("compounds:import"), {"file": upload, "dataset": "huge"})
    assert page.status_code == 200
    assert "row at line 3: a cell is longer than 131,072 characters" in page.content.decode()
    assert not Compound.objects.exists()


def test_the_api_report_counts_skipped_values_and_says_each_issues_kind(api_for, lead):  # type: ignore[no-untyped-def]
    from tests.factories import AssayFactory

    assay = AssayFactory(name="pIC50")
    upload = io.BytesIO(b"smiles,v\nCCO,>10\nCCO,5\nxx,1\n")
    upload.name = "v.csv"
    response = api_for(lead).post(
        "/api/compounds/import/", {"file": upload, "dataset": "d", "assay": assay.pk, "value_column": "v"},
        format="multipart",
    )
    data = response.json()
    assert (data["values_skipped"], data["invalid"], data["duplicates_in_file"]) == (1, 1, 1)
    assert [(i["row"], i["kind"]) for i in data["issues"]] == [(2, "value_skipped"), (3, "duplicate"), (4, "rejected")]


def _unreadable_old_row() -> Compound:
    """A row stored before registration checked that the canonical SMILES reads back."""
    compound = CompoundFactory(smiles="CCO", name="old ferrocene")
    Compound.objects.filter(pk=compound.pk).update(canonical_smiles="c1cccc1")
    return compound


def test_an_old_unreadable_row_draws_a_placeholder_instead_of_a_500(client_for, viewer):  # type: ignore[no-untyped-def]
    compound = _unreadable_old_row()
    response = client_for(viewer).get(reverse("compounds:structure", args=[compound.pk]))
    assert response.status_code == 200
    assert "structure cannot be drawn" in response.content.decode()


def test_an_old_unreadable_row_is_in_the_sdf_download_with_the_reason(client_for, viewer):  # type: ignore[no-untyped-def]
    _unreadable_old_row()
    CompoundFactory(smiles="CCCO", name="propanol")
    response = client_for(viewer).get(reverse("compounds:export"), {"format": "sdf"})
    body = b"".join(response.streaming_content).decode()
    assert body.count("$$$$") == 2
    assert "old ferrocene" in body and ">  <structure_error>" in body


def test_many_registrations_in_one_transaction_queue_the_followups_once(rq_queue, settings, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    from django.db import transaction

    from compounds import services

    settings.CHEMLOOP_IMPORT_FOLLOWUPS = SCREEN
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        for smiles in ("CCOc1ccccc1", "CCCOc1ccccc1", "CCCCOc1ccccc1"):
            services.compound_register(smiles=smiles)
    assert sum(1 for c in callbacks if getattr(c, "chemloop_followup", None)) == 1
    assert _jobs(rq_queue) == ["compounds.jobs.patterns_range"]
