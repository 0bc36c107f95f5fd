"""Selecting within a series: a pool narrowed to the compounds that contain a substructure."""

from __future__ import annotations

from typing import Any

import pytest
from rdkit import Chem

from compounds.models import Compound
from config.exceptions import ValidationFailed
from cycles.models import ActiveLearningCycle
from cycles.services.selection import PoolSpec, cycle_select, pool_queryset
from tests.solubility import solubility_setup

pytestmark = pytest.mark.django_db

RING = "c1ccc2ccccc2c1"  # naphthalenes: 25 of the 40 pool compounds


@pytest.fixture
def data(settings: Any, tmp_path: Any, lead: Any) -> dict[str, Any]:
    settings.ARTIFACT_ROOT = tmp_path
    setup = solubility_setup(labeled=40, pool=40, validation=20)
    setup["lead"] = lead
    return setup


def _contains(compound: Compound, pattern: str) -> bool:
    return Chem.MolFromSmiles(compound.canonical_smiles).HasSubstructMatch(Chem.MolFromSmarts(pattern))


def test_the_pool_is_the_eligible_compounds_that_contain_the_pattern(data: dict[str, Any]) -> None:
    model = data["model"]
    everything, _ = pool_queryset(model=model, pool=PoolSpec())
    expected = {c.pk for c in everything if _contains(c, RING)}
    assert 0 < len(expected) < everything.count()  # the filter has something to do

    narrowed, _ = pool_queryset(model=model, pool=PoolSpec(substructure=RING))
    assert set(narrowed.values_list("id", flat=True)) == expected


def test_a_cycle_picks_only_from_the_series_and_says_so(data: dict[str, Any]) -> None:
    result = cycle_select(
        model=data["model"], user=data["lead"], strategy="uncertainty", batch_size=5,
        pool=PoolSpec(kind="dataset", dataset_id=Compound.objects.get(pk=data["pool_ids"][0]).datasets.get().pk,
                      substructure=RING),
    )
    assert len(result.candidates) == 5 and all(_contains(c.compound, RING) for c in result.candidates)
    assert result.cycle is not None
    assert result.cycle.pool_description == f"dataset {result.cycle.pool_description.split()[1]} containing {RING}"
    assert result.pool_size == sum(_contains(c, RING) for c in Compound.objects.filter(id__in=data["pool_ids"]))


@pytest.mark.parametrize(
    ("pattern", "limit", "message"),
    [
        ("C(", 100_000, "Invalid substructure: not a valid SMARTS or SMILES pattern"),
        (RING, 5, "this pool has 40 compounds, and matching the substructure would parse more than 5"),
    ],
)
def test_a_bad_pattern_or_a_too_big_pool_is_refused_before_anything_is_written(
    data: dict[str, Any], settings: Any, pattern: str, limit: int, message: str
) -> None:
    settings.CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT = limit
    with pytest.raises(ValidationFailed) as err:
        cycle_select(model=data["model"], user=data["lead"], strategy="uncertainty", batch_size=5,
                     pool=PoolSpec(substructure=pattern))
    assert message in err.value.message and err.value.extra["field"] == "substructure"
    assert not ActiveLearningCycle.objects.exists()


def test_a_series_without_eligible_compounds_is_a_clear_400(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed, match="no eligible compounds"):
        cycle_select(model=data["model"], user=data["lead"], strategy="uncertainty", batch_size=5,
                     pool=PoolSpec(substructure="[U]"))


def test_with_the_stored_screen_a_pool_above_the_parse_limit_can_be_narrowed(data: dict[str, Any], settings: Any) -> None:
    from compounds import chemistry, services

    services.compound_patterns_backfill_range(id_from=0, id_to=10**9)
    query = chemistry.substructure_query(RING)
    pool = list(Compound.objects.filter(id__in=data["pool_ids"]))
    candidates = int(query.may_match([bytes(c.pattern_fp) for c in pool]).sum())
    assert candidates < len(pool)  # the screen rules some out, so fewer need parsing
    settings.CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT = candidates
    narrowed, _ = pool_queryset(model=data["model"], pool=PoolSpec(substructure=RING))
    assert {c.pk for c in narrowed} == {c.pk for c in pool if _contains(c, RING)}
