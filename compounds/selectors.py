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


# --- Reads for the API ---------------------------------------------------------------


def compound_get(*, compound_id: int) -> Compound:
    from config.exceptions import NotFound

    compound = Compound.objects.filter(pk=compound_id).first()
    if compound is None:
        raise NotFound("No such compound.")
    return compound


def compound_datasets(*, compound: Compound) -> QuerySet:
    return compound.datasets.order_by("name")


def assay_list() -> QuerySet:
    from compounds.models import Assay

    return Assay.objects.order_by("name", "id")


def measurement_list(*, assay_id: int | None = None, compound_id: int | None = None) -> QuerySet[Measurement]:
    """Measurements with compound, assay and author joined (one query per page)."""
    qs = Measurement.objects.select_related("compound", "assay", "created_by")
    if assay_id:
        qs = qs.filter(assay_id=assay_id)
    if compound_id:
        qs = qs.filter(compound_id=compound_id)
    return qs.order_by("-created_at", "-id")


def compound_labels(*, compound_ids: list[int], assay_id: int) -> dict[int, list[Measurement]]:
    """Each compound's measurements in one assay, newest first, in one query."""
    out: dict[int, list[Measurement]] = {cid: [] for cid in compound_ids}
    for m in Measurement.objects.filter(assay_id=assay_id, compound_id__in=compound_ids).order_by("-created_at", "-id"):
        out[m.compound_id].append(m)
    return out
