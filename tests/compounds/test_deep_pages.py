"""Deep pages of the registry read the page's ids first, then those rows (config.paginator).

On the 1M registry `SELECT * … OFFSET n` stepped over n whole rows (fingerprints, feature
vectors) and took 3-6 s for a middle or last page of the compound list, the API and admin.
These tests pin what makes it fast without timing it: the query that skips rows (OFFSET)
reads only the primary key; the rows of the page are then read by key.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from compounds.models import Compound
from config.paginator import DeferredJoinPaginator
from tests.factories import CompoundFactory

pytestmark = pytest.mark.django_db

SMILES = ["C" * n + "O" for n in range(1, 21)] + ["c1ccccc1" + "C" * n for n in range(0, 10)]  # 30: two list pages


@pytest.fixture
def registry() -> list[Compound]:
    return [CompoundFactory(smiles=s, name=f"cpd-{i:02d}") for i, s in enumerate(SMILES)]


def _offset_queries(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if "OFFSET" in q["sql"]]


def _assert_offset_reads_only_ids(ctx: CaptureQueriesContext) -> None:
    skipping = _offset_queries(ctx)
    assert skipping, "expected a deep page to skip rows with OFFSET"
    for sql in skipping:
        assert '"fingerprint"' not in sql and '"feature_vector"' not in sql, sql


@pytest.mark.parametrize("ordering", ["id", "-name", "heavy_atoms"])
def test_every_page_has_the_rows_and_order_of_a_plain_paginator(registry: list[Compound], ordering: str) -> None:
    from django.core.paginator import Paginator

    qs = Compound.objects.filter(heavy_atoms__gte=2).order_by(ordering, "id")
    plain, deferred = Paginator(qs, 4), DeferredJoinPaginator(qs, 4)
    assert deferred.num_pages == plain.num_pages > 1
    for number in plain.page_range:
        assert list(deferred.page(number)) == list(plain.page(number))
    assert list(DeferredJoinPaginator(list(qs), 4).page(2)) == list(plain.page(2))  # a list pages as usual


@pytest.mark.parametrize("ordering", ["id", "-id", "pk"])
def test_a_small_filtered_result_is_read_by_its_indexes_and_sorted_here(registry: list[Compound], ordering: str) -> None:
    """ORDER BY id LIMIT 25 let PostgreSQL walk the primary key and filter every row of
    the 1M registry for a name search matching one compound (2.2 s); a result the count
    shows to be small is read without ORDER BY/LIMIT and sorted in Python instead."""
    from django.core.paginator import Paginator

    qs = Compound.objects.filter(name__icontains="cpd-1").order_by(ordering)  # 10 of the 30
    plain, deferred = Paginator(qs, 4), DeferredJoinPaginator(qs, 4)
    assert deferred.count == 10
    for number in plain.page_range:
        with CaptureQueriesContext(connection) as ctx:
            page = list(deferred.page(number))
        assert page == list(plain.page(number))
        id_reads = [q["sql"] for q in ctx.captured_queries if "ORDER BY" in q["sql"] or "LIMIT" in q["sql"]]
        assert id_reads == [], id_reads
    # Unfiltered, the primary-key walk is the right plan: the page is read with LIMIT.
    everything = DeferredJoinPaginator(Compound.objects.order_by("id"), 4)
    with CaptureQueriesContext(connection) as ctx:
        everything.page(2)
    assert any("LIMIT" in q["sql"] for q in ctx.captured_queries)


def test_a_deep_page_of_the_compound_list_skips_rows_by_id_only(client_for: Any, viewer: Any, registry: list[Compound]) -> None:
    client = client_for(viewer)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("compounds:list"), {"page": 2})
    assert response.status_code == 200
    assert [c.pk for c in response.context["page"]] == [c.pk for c in registry[25:]]
    _assert_offset_reads_only_ids(ctx)


def test_a_deep_page_of_the_compound_api_skips_rows_by_id_only(api_for: Any, viewer: Any, registry: list[Compound]) -> None:
    client = api_for(viewer)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/compounds/", {"page": 3, "page_size": 5})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [c.pk for c in registry[10:15]]
    _assert_offset_reads_only_ids(ctx)


def test_a_deep_admin_changelist_page_skips_rows_by_id_only(client: Any, admin_user: Any, registry: list[Compound], monkeypatch: Any) -> None:
    from compounds.admin import CompoundAdmin

    monkeypatch.setattr(CompoundAdmin, "list_per_page", 5)
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("admin:compounds_compound_changelist"), {"p": 2})
    assert response.status_code == 200
    assert [c.pk for c in response.context["cl"].result_list] == [c.pk for c in registry[5:10]]
    _assert_offset_reads_only_ids(ctx)


def test_the_admin_search_is_the_compound_search(client: Any, admin_user: Any, registry: list[Compound]) -> None:
    """Name contains, exact SMILES in any form and an InChIKey prefix, as on the compounds page."""
    client.force_login(admin_user)
    url = reverse("admin:compounds_compound_changelist")
    benzene = next(c for c in registry if c.canonical_smiles == "c1ccccc1")
    for term in ("cpd-20", "C1=CC=CC=C1", benzene.inchikey[:14].lower()):
        response = client.get(url, {"q": term})
        assert [c.pk for c in response.context["cl"].result_list] == [benzene.pk], term
