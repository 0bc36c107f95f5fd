import pytest

from compounds import selectors
from tests.factories import CompoundFactory

pytestmark = pytest.mark.django_db


def test_similar_compounds_come_best_first_and_exclude_the_query():
    query = CompoundFactory(smiles="CCCCCCO")
    near = CompoundFactory(smiles="CCCCCO")
    mid = CompoundFactory(smiles="CCCO")
    far = CompoundFactory(smiles="c1ccccc1")

    result = selectors.compound_similar(compound=query, k=3)

    assert [s.compound for s in result] == [near, mid, far]
    assert result[0].similarity > result[1].similarity > result[2].similarity
    assert query not in [s.compound for s in result]


def test_search_finds_by_name_inchikey_and_any_smiles_form():
    benzene = CompoundFactory(smiles="c1ccccc1", name="benzene")
    CompoundFactory(smiles="CCO", name="ethanol")
    assert list(selectors.compound_search(query="benz")) == [benzene]
    assert list(selectors.compound_search(query=benzene.inchikey[:14])) == [benzene]
    assert list(selectors.compound_search(query="C1=CC=CC=C1")) == [benzene]
