import io

import pytest

from compounds import chemistry, services
from compounds.models import Compound

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [f"{'C' * (i % 12 + 1)}{'N' * (i // 12 + 1)}" for i in range(30)]


def test_a_big_import_defers_properties_to_enrichment_jobs_run_by_a_real_worker(run_worker, rq_queue):  # type: ignore[no-untyped-def]
    data = ("smiles\n" + "\n".join(ROWS) + "\n").encode()
    # chunk_size 10 < 30 rows: "auto" treats this as a big file.
    report = services.compounds_import(stream=io.BytesIO(data), filename="big.csv", dataset_name="big", chunk_size=10)
    assert report.created == 30
    assert report.properties_deferred
    assert Compound.objects.filter(mw__isnull=True).count() == 30
    assert all(c.heavy_atoms > 0 for c in Compound.objects.all())  # identity is complete already
    assert len(rq_queue) >= 1

    run_worker()

    assert not Compound.objects.filter(mw__isnull=True).exists()
    methylamine = Compound.objects.get(canonical_smiles="CN")
    expected = chemistry.compute_properties(chemistry.Chem.MolFromSmiles("CN"))
    assert methylamine.mw == expected["mw"]
    assert methylamine.clogp == expected["clogp"]
    assert methylamine.hbd == expected["hbd"]


def test_a_small_import_computes_properties_inline(rq_queue):  # type: ignore[no-untyped-def]
    report = services.compounds_import(stream=io.BytesIO(b"smiles\nCCO\n"), filename="s.csv", dataset_name="s")
    assert not report.properties_deferred
    assert Compound.objects.get().mw == pytest.approx(46.069, abs=1e-3)
    assert len(rq_queue) == 0


def test_enrichment_is_idempotent(rq_queue):  # type: ignore[no-untyped-def]
    data = ("smiles\n" + "\n".join(ROWS[:12]) + "\n").encode()
    services.compounds_import(
        stream=io.BytesIO(data), filename="x.csv", dataset_name="x", properties="deferred"
    )
    hi = Compound.objects.order_by("-id").first().pk
    assert services.compounds_enrich_range(id_from=0, id_to=hi + 1) == 12
    assert services.compounds_enrich_range(id_from=0, id_to=hi + 1) == 0


def test_after_an_import_the_default_features_are_stored_by_a_real_worker(run_worker, rq_queue, settings):  # type: ignore[no-untyped-def]
    from mlmodels import services as services_ml
    from mlmodels.ml.features import DEFAULT_SPEC
    from mlmodels.ml.physchem import load_prior

    settings.CHEMLOOP_IMPORT_FOLLOWUPS = ["mlmodels.services.compound_features_backfill_enqueue"]
    data = ("smiles\n" + "\n".join(ROWS[:8]) + "\n").encode()
    services.compounds_import(stream=io.BytesIO(data), filename="f.csv", dataset_name="f")
    assert Compound.objects.filter(feature_set="").count() == 8
    run_worker()
    assert set(Compound.objects.values_list("feature_set", flat=True)) == {DEFAULT_SPEC.name}
    assert all(len(bytes(c.feature_vector)) == 4 * DEFAULT_SPEC.n_stored for c in Compound.objects.all())
    # With the physico-chemical prior's columns, under the key of this machine's boosters.
    key = load_prior().key
    assert set(Compound.objects.values_list("prior_key", flat=True)) == {key}
    assert all(len(bytes(c.prior_columns)) == 12 for c in Compound.objects.all())
    # Vectors stored before the columns were (an upgrade) are found by the next import's follow-up.
    Compound.objects.filter(pk=Compound.objects.order_by("id").first().pk).update(prior_key="", prior_columns=None)
    assert services_ml.compound_features_backfill_enqueue() == 1
    run_worker()
    assert set(Compound.objects.values_list("prior_key", flat=True)) == {key}
    assert services_ml.compound_features_backfill_enqueue() == 0


def test_after_an_import_the_substructure_screen_is_stored_by_a_real_worker(run_worker, rq_queue, settings):  # type: ignore[no-untyped-def]
    settings.CHEMLOOP_IMPORT_FOLLOWUPS = ["compounds.services.compound_patterns_backfill_enqueue"]
    data = ("smiles\n" + "\n".join(ROWS[:8]) + "\n").encode()
    services.compounds_import(stream=io.BytesIO(data), filename="p.csv", dataset_name="p")
    assert Compound.objects.filter(pattern_fp__isnull=True).count() == 8
    run_worker()
    for c in Compound.objects.all():
        assert bytes(c.pattern_fp) == chemistry.pattern_fingerprint(chemistry.Chem.MolFromSmiles(c.canonical_smiles))
    hi = Compound.objects.order_by("-id").first().pk
    assert services.compound_patterns_backfill_range(id_from=0, id_to=hi + 1) == 0  # idempotent
