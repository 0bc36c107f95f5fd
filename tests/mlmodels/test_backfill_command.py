"""`manage.py backfill_features`: the stored features and prior columns an import's follow-up
would have stored, for compounds that missed them (an upgrade, Redis down at import)."""

import io

import pytest
from django.core.management import call_command

from compounds import services as compound_services
from compounds.models import Compound
from mlmodels.ml.features import DEFAULT_SPEC
from mlmodels.ml.physchem import load_prior

ROWS = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "Clc1ccc(Cl)cc1", "OC(=O)CCCCC(=O)O"]


def _import(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHEMLOOP_IMPORT_FOLLOWUPS = []  # as if the follow-up never ran
    data = ("smiles\n" + "\n".join(ROWS) + "\n").encode()
    compound_services.compounds_import(stream=io.BytesIO(data), filename="b.csv", dataset_name="b")
    assert Compound.objects.filter(feature_set="").count() == len(ROWS)


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("backfill_features", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_now_stores_features_and_prior_columns_and_a_second_run_finds_nothing(settings):  # type: ignore[no-untyped-def]
    _import(settings)
    key = load_prior().key
    first = Compound.objects.order_by("id").first()
    assert f"for {len(ROWS)} compounds" in _run("--now")
    assert set(Compound.objects.values_list("feature_set", "prior_key")) == {(DEFAULT_SPEC.name, key)}
    assert "for 0 compounds" in _run("--now")
    # A vector stored before the prior's columns were: only its columns are added.
    Compound.objects.filter(pk=first.pk).update(prior_key="", prior_columns=None)
    assert "for 1 compounds" in _run("--now")
    assert Compound.objects.get(pk=first.pk).prior_key == key


def test_without_now_it_queues_jobs_that_a_real_worker_runs(settings, run_worker, rq_queue):  # type: ignore[no-untyped-def]
    _import(settings)
    assert "Queued 1 job(s)" in _run()
    run_worker()
    assert set(Compound.objects.values_list("feature_set", "prior_key")) == {(DEFAULT_SPEC.name, load_prior().key)}
    assert "nothing queued" in _run()
