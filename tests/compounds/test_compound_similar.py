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


def test_the_binary_copy_read_of_fingerprints_matches_the_ordinary_read():
    from compounds.models import Compound

    for smiles in ("CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C", "OC(=O)CCl"):
        CompoundFactory(smiles=smiles)
    rows = Compound.objects.order_by("id").values_list("id", "fingerprint")
    ids, matrix = selectors._fingerprint_chunk(rows.filter(id__gt=0)[:4])  # a chunk query as the scan makes it
    expected = list(rows[:4])
    assert ids.tolist() == [pk for pk, _ in expected]
    assert [row.tobytes() for row in matrix] == [bytes(fp) for _, fp in expected]
    empty_ids, empty = selectors._fingerprint_chunk(rows.filter(id__lt=0))
    assert empty_ids.size == 0 and empty.shape == (0, 256)


def test_a_scan_in_small_chunks_finds_what_one_chunk_finds(monkeypatch):
    """The scan reads the registry SIMILAR_SCAN_CHUNK rows at a time (keyset paging on
    id); with 2-row chunks the paging itself is what is tested."""
    query = CompoundFactory(smiles="CCCCCCO")
    for smiles in ("CCCCCO", "CCCO", "c1ccccc1", "CCCCCCCO", "CC(C)O", "OCCO", "CCCCCCCCO"):
        CompoundFactory(smiles=smiles)
    whole = [(s.compound.pk, s.similarity) for s in selectors.compound_similar(compound=query, k=4)]
    monkeypatch.setattr(selectors, "SIMILAR_SCAN_CHUNK", 2)
    chunked = [(s.compound.pk, s.similarity) for s in selectors.compound_similar(compound=query, k=4)]
    assert chunked == whole and len(whole) == 4


def test_search_finds_by_name_inchikey_and_any_smiles_form():
    benzene = CompoundFactory(smiles="c1ccccc1", name="benzene")
    CompoundFactory(smiles="CCO", name="ethanol")
    assert list(selectors.compound_search(query="benz")) == [benzene]
    assert list(selectors.compound_search(query="ben")) == [benzene]
    # One or two characters match names and keys whole, not inside (no index serves them).
    two = CompoundFactory(smiles="CCCCO", name="bu")
    assert list(selectors.compound_search(query="be")) == []
    assert list(selectors.compound_search(query="BU")) == [two]
    assert list(selectors.compound_search(query="C")) == []  # methane's SMILES: none registered
    methane = CompoundFactory(smiles="C", name="methane")
    assert list(selectors.compound_search(query="C")) == [methane]
    assert list(selectors.compound_search(query=benzene.inchikey[:14])) == [benzene]
    assert list(selectors.compound_search(query="C1=CC=CC=C1")) == [benzene]


def test_search_finds_an_inchikey_prefix_typed_in_lower_case():
    benzene = CompoundFactory(smiles="c1ccccc1", name="benzene")
    assert list(selectors.compound_search(query=benzene.inchikey[:14].lower())) == [benzene]


def _plan(queryset) -> str:  # type: ignore[no-untyped-def]
    from django.db import connection, transaction

    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # A handful of test rows would be scanned anyway; with scans made "expensive", the
        # planner shows whether an index can answer every branch of the search. Plain index
        # scans go too: otherwise, with some table statistics, the planner walks the whole
        # primary-key index with the search as a filter, a full scan under another name.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("query", ["aspirin", "POOL-0999999", "CCO"])
def test_the_text_search_is_answered_by_indexes_not_a_full_scan(query):
    """On a 1M registry a full scan took 1-4 s per keystroke of the live search."""
    CompoundFactory(smiles="c1ccccc1", name="benzene")
    plan = _plan(selectors.compound_search(query=query))
    assert "Seq Scan" not in plan, plan
    assert "compound_name_trgm_idx" in plan
