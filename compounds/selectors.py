"""Reads from the compound registry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Q, QuerySet

from compounds import chemistry
from compounds.models import Compound, Measurement


def compound_search(*, query: str = "", dataset_id: int | None = None) -> QuerySet[Compound]:
    """Compounds matching a name, external id, InChIKey or (canonicalised) SMILES."""
    qs = Compound.objects.all()
    if dataset_id:
        qs = qs.filter(datasets__id=dataset_id)
    query = query.strip()
    if not query:
        return qs.order_by("id")
    cond = Q(name__icontains=query) | Q(external_id__iexact=query) | Q(inchikey__istartswith=query)
    try:
        rec = chemistry.process_smiles(query)
    except chemistry.ChemistryError:
        rec = None
    if rec is not None:
        cond |= Q(inchikey=rec.inchikey) | Q(canonical_smiles=rec.canonical_smiles)
    return qs.filter(cond).order_by("id")


def compound_measurements(*, compound: Compound) -> QuerySet[Measurement]:
    return compound.measurements.select_related("assay", "created_by").order_by("assay__name", "-created_at")


@dataclass(frozen=True)
class SimilarCompound:
    compound: Compound
    similarity: float


def compound_similar(
    *, compound: Compound | None = None, smiles: str | None = None, k: int = 10, queryset: QuerySet[Compound] | None = None
) -> list[SimilarCompound]:
    """The k most Tanimoto-similar compounds (Morgan r=2, 2048 bits), best first.

    Scans the stored fingerprints in chunks; the query compound itself is left out.
    """
    if compound is not None:
        query_fp = np.frombuffer(bytes(compound.fingerprint), dtype=np.uint8)
    elif smiles:
        query_fp = np.frombuffer(chemistry.process_smiles(smiles).fingerprint, dtype=np.uint8)
    else:
        raise ValueError("compound or smiles is required")
    qs = (queryset if queryset is not None else Compound.objects.all()).order_by("id")
    if compound is not None:
        qs = qs.exclude(pk=compound.pk)
    best_ids: list[int] = []
    best_sims: list[float] = []
    last_id = 0
    chunk = 50_000
    while True:
        rows = list(qs.filter(id__gt=last_id).values_list("id", "fingerprint")[:chunk])
        if not rows:
            break
        last_id = rows[-1][0]
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = chemistry.fingerprints_to_matrix([r[1] for r in rows])
        for i, sim in chemistry.top_k_similar(query_fp, matrix, k):
            best_ids.append(int(ids[i]))
            best_sims.append(sim)
        if len(rows) < chunk:
            break
    order = sorted(range(len(best_ids)), key=lambda i: (-best_sims[i], best_ids[i]))[:k]
    by_id = Compound.objects.in_bulk([best_ids[i] for i in order])
    return [SimilarCompound(compound=by_id[best_ids[i]], similarity=best_sims[i]) for i in order]


def compound_svg(*, compound_id: int, width: int = 300, height: int = 220) -> str | None:
    row = Compound.objects.filter(pk=compound_id).values_list("canonical_smiles", flat=True).first()
    if row is None:
        return None
    return chemistry.depict_svg(row, width=width, height=height)
