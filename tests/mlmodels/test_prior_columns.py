"""The physico-chemical prior's columns stored per compound: scoring reads them instead of
running the prior's boosters, and gets exactly the scores it computes without them."""

import numpy as np
import pytest

from compounds.models import Compound
from mlmodels import services
from mlmodels.ml import features, physchem
from mlmodels.ml.artifacts import load_artifact
from tests.solubility import solubility_setup

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.ARTIFACT_ROOT = tmp_path
    data = solubility_setup()
    data["ensemble"] = load_artifact(tmp_path / data["model"].artifact).ensemble
    data["pool"] = Compound.objects.filter(id__in=data["pool_ids"])
    data["spec"] = services.model_feature_spec(data["model"])
    hi = max(data["pool_ids"])
    services.compound_features_backfill_range(spec=data["spec"], id_from=0, id_to=hi + 1)
    return data


def _stored_columns(ids: list[int]) -> np.ndarray:
    blobs = dict(Compound.objects.filter(id__in=ids).values_list("id", "prior_columns"))
    return np.stack([np.frombuffer(bytes(blobs[i]), dtype=np.float32) for i in ids])


def test_the_model_of_the_default_featurizer_reads_the_machines_prior(setup):  # type: ignore[no-untyped-def]
    ensemble = setup["ensemble"]
    assert physchem.prior_default(setup["spec"])
    # The artifact's own copy of the boosters (pickled and loaded) has the cache's key.
    assert ensemble.prior_key == physchem.load_prior().key
    assert ensemble.prior_ is not physchem.load_prior()


def test_stored_columns_are_the_ones_the_ensemble_computes(setup):  # type: ignore[no-untyped-def]
    ensemble, spec = setup["ensemble"], setup["spec"]
    ids = sorted(setup["pool_ids"])
    assert set(Compound.objects.filter(id__in=ids).values_list("prior_key", flat=True)) == {ensemble.prior_key}
    packed, stored = services.compound_features(spec=spec, compound_ids=ids)
    X = features.build_matrix(spec, packed, stored)
    computed = ensemble.prior_.columns(X, ensemble.descriptor_offset)
    np.testing.assert_array_equal(_stored_columns(ids), computed)
    assert np.isfinite(computed).all()


def test_scores_from_stored_columns_equal_scores_without_them(setup):  # type: ignore[no-untyped-def]
    model, pool, ids = setup["model"], setup["pool"], sorted(setup["pool_ids"])
    stored = services.model_score_compounds(model=model, queryset=pool)
    Compound.objects.filter(id__in=ids).update(prior_key="")
    computed = services.model_score_compounds(model=model, queryset=pool)
    assert stored.ids.tolist() == computed.ids.tolist() == ids
    np.testing.assert_array_equal(stored.mean, computed.mean)
    np.testing.assert_array_equal(stored.std, computed.std)


def test_scoring_reads_the_columns_only_under_the_models_key(setup):  # type: ignore[no-untyped-def]
    model, pool, ids, key = setup["model"], setup["pool"], sorted(setup["pool_ids"]), setup["ensemble"].prior_key
    honest = services.model_score_compounds(model=model, queryset=pool).mean
    wrong = np.full((len(ids), 3), [600.0, 9.0, -12.0], dtype=np.float32)  # a melting point of 600 K ...
    for pk, row in zip(ids, wrong, strict=True):
        Compound.objects.filter(pk=pk).update(prior_columns=row.tobytes())
    # Under the model's key they are read (so the read is real) ...
    assert not np.allclose(services.model_score_compounds(model=model, queryset=pool).mean, honest)
    # ... under any other key, or at another width, they are not.
    Compound.objects.filter(id__in=ids).update(prior_key="0123456789abcdef")
    np.testing.assert_array_equal(services.model_score_compounds(model=model, queryset=pool).mean, honest)
    Compound.objects.filter(id__in=ids).update(prior_key=key, prior_columns=b"\x00" * 8)
    np.testing.assert_array_equal(services.model_score_compounds(model=model, queryset=pool).mean, honest)


def test_the_copy_read_and_the_orm_read_agree_on_the_prior_columns(setup):  # type: ignore[no-untyped-def]
    spec, ids = setup["spec"], sorted(setup["pool_ids"])
    prior = (setup["ensemble"].prior_key, 3)
    Compound.objects.filter(id__in=ids[::3]).update(prior_key="")
    Compound.objects.filter(id__in=ids[1::3]).update(prior_columns=None)
    copy = services._chunk_rows_copy(np.array(ids), spec, prior)
    orm = services._chunk_rows_orm(ids, spec, prior)
    assert copy is not None and orm is not None
    np.testing.assert_array_equal(copy.prior, orm.prior)  # NaN where nothing is stored under the key
    missing = np.isnan(copy.prior).any(axis=1)
    assert missing.tolist() == [i % 3 != 2 for i in range(len(ids))]
    assert services._chunk_rows_copy(np.array(ids), spec).prior is None  # not asked for, not read


def test_new_features_come_with_their_columns_and_old_vectors_get_them_from_the_backfill(setup):  # type: ignore[no-untyped-def]
    spec, ids, key = setup["spec"], sorted(setup["pool_ids"]), setup["ensemble"].prior_key
    before = _stored_columns(ids)
    Compound.objects.filter(id__in=ids[:5]).update(feature_set="", feature_vector=None, prior_key="", prior_columns=None)
    Compound.objects.filter(id__in=ids[5:10]).update(prior_key="", prior_columns=None)
    assert services.compound_features_backfill_range(spec=spec, id_from=0, id_to=max(ids) + 1) == 10
    assert set(Compound.objects.filter(id__in=ids).values_list("prior_key", flat=True)) == {key}
    np.testing.assert_array_equal(_stored_columns(ids), before)
    assert services.compound_features_backfill_range(spec=spec, id_from=0, id_to=max(ids) + 1) == 0


def test_a_featurizer_without_the_prior_stores_no_columns(setup):  # type: ignore[no-untyped-def]
    spec = features.HIT_FINDING_SPEC
    assert not physchem.prior_default(spec)
    ids = sorted(setup["pool_ids"])[:4]
    assert services.compound_features_ensure(spec=spec, compound_ids=ids) == 4
    rows = Compound.objects.filter(id__in=ids).values_list("feature_set", "prior_key", "prior_columns")
    assert {r for r in rows} == {(spec.name, "", None)}


def test_the_admin_compound_page_shows_the_stored_prior_columns(setup, client_for, lead):  # type: ignore[no-untyped-def]
    from django.urls import reverse

    pk = sorted(setup["pool_ids"])[0]
    melting_point = _stored_columns([pk])[0, 0]
    page = client_for(lead).get(reverse("admin:compounds_compound_change", args=[pk])).content.decode()
    assert f"under key {setup['ensemble'].prior_key}" in page
    assert f"{melting_point:.4g}" in page
