"""Reads from the compound registry."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet

from compounds import chemistry, pgcopy
from compounds.models import Compound, Measurement
from config.exceptions import ValidationFailed

# Shortest query matched inside names and as an InChIKey prefix (trigram indexes need 3).
SEARCH_MIN_PARTIAL = 3


def compound_search(*, query: str = "", dataset_id: int | None = None) -> QuerySet[Compound]:
    """Compounds matching a name, external id, InChIKey or (canonicalised) SMILES."""
    qs = Compound.objects.all()
    if dataset_id:
        qs = qs.filter(datasets__id=dataset_id)
    query = query.strip()
    if not query:
        return qs.order_by("id")
    # Each branch has an index (migration 0006), so a search on a 1M registry is a BitmapOr
    # of index scans, not a full scan. InChIKeys are stored upper-case: startswith on the
    # upper-cased prefix uses the column's pattern index, which istartswith's UPPER() would not.
    if len(query) >= SEARCH_MIN_PARTIAL:
        cond = Q(name__icontains=query) | Q(external_id__iexact=query) | Q(inchikey__startswith=query.upper())
    else:
        # One or two characters match a large share of a big registry and no trigram
        # index can serve them (a live search's first keystroke took 1.5 s on 1M
        # compounds): names and keys match whole until the third character.
        cond = Q(name__iexact=query) | Q(external_id__iexact=query) | Q(inchikey=query.upper())
    try:
        rec = chemistry.process_smiles(query)
    except chemistry.ChemistryError:
        rec = None
    if rec is not None:
        cond |= Q(inchikey=rec.inchikey) | Q(canonical_smiles=rec.canonical_smiles)
    return qs.filter(cond).order_by("id")


@dataclass(frozen=True)
class StructureSearch:
    """What a substructure or similarity search found, and how much it looked at."""

    # Substructure: by id. Similarity: most similar first, each with a `similarity` attribute.
    compounds: list[Compound]
    ranked_by_similarity: bool
    scanned: int  # compounds looked at
    searchable: int  # compounds the search could look at (the dataset, or all)
    max_hits: int
    hit_limit: bool  # stopped at max_hits

    @property
    def complete(self) -> bool:
        return not self.hit_limit and self.scanned >= self.searchable


def _search_scope(dataset_id: int | None) -> QuerySet[Compound]:
    qs = Compound.objects.all()
    return qs.filter(datasets__id=dataset_id) if dataset_id else qs


def compound_substructure_search(
    *, pattern: str, dataset_id: int | None = None, max_hits: int | None = None, scan_limit: int | None = None
) -> StructureSearch:
    """Compounds that contain `pattern` (SMARTS, or SMILES; see chemistry.substructure_query).

    Walks the registry in id order (see `_substructure_scan`); stops at `max_hits` matches
    or after parsing `scan_limit` molecules the stored screen could not rule out, and
    says so in the result. Raises ValidationFailed (field "substructure") for a pattern
    that cannot be parsed.
    """
    query = _substructure_query(pattern)
    max_hits = max_hits or settings.CHEMLOOP_STRUCTURE_SEARCH_MAX_HITS
    scan_limit = scan_limit or settings.CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT
    scope = _search_scope(dataset_id)
    hit_ids, scanned = _substructure_scan(query, scope, max_hits=max_hits, parse_limit=scan_limit)
    by_id = Compound.objects.in_bulk(hit_ids)
    return StructureSearch(
        compounds=[by_id[i] for i in hit_ids],
        ranked_by_similarity=False,
        scanned=scanned,
        searchable=scope.count(),
        max_hits=max_hits,
        hit_limit=len(hit_ids) >= max_hits,
    )


def compound_ids_containing(
    *, pattern: str, queryset: QuerySet[Compound], parse_limit: int | None = None
) -> tuple[list[int], bool]:
    """(ids of the compounds in `queryset` that contain `pattern`, ascending; True when every
    compound was looked at). `parse_limit` bounds the molecules parsed (those the stored
    screen cannot rule out). ValidationFailed (field "substructure") for a bad pattern."""
    hit_ids, scanned = _substructure_scan(_substructure_query(pattern), queryset, max_hits=None, parse_limit=parse_limit)
    return hit_ids, parse_limit is None or scanned >= queryset.count()


def _substructure_query(pattern: str) -> chemistry.SubstructureQuery:
    try:
        return chemistry.substructure_query(pattern)
    except chemistry.ChemistryError as exc:
        raise ValidationFailed(f"Invalid substructure: {exc}", extra={"field": "substructure"}) from exc


def _substructure_scan(
    query: chemistry.SubstructureQuery, queryset: QuerySet[Compound], *, max_hits: int | None, parse_limit: int | None
) -> tuple[list[int], int]:
    """(matching ids in id order, compounds looked at).

    Reads the registry in id-ordered chunks, so memory stays flat. A compound whose
    stored pattern fingerprint rules the query out is done without parsing; the rest
    are parsed and matched. Stops at `max_hits` matches or once `parse_limit` molecules
    have been parsed: the compounds after the last one handled were not looked at.
    """
    hit_ids: list[int] = []
    scanned = parsed = last_id = 0
    while (parse_limit is None or parsed < parse_limit) and (max_hits is None or len(hit_ids) < max_hits):
        rows = list(
            queryset.filter(id__gt=last_id).order_by("id").values_list("id", "canonical_smiles", "pattern_fp")[:5_000]
        )
        if not rows:
            break
        candidates = np.flatnonzero(query.may_match([fp for _, _, fp in rows]))
        if parse_limit is not None and candidates.size > parse_limit - parsed:
            candidates = candidates[: parse_limit - parsed]
            rows = rows[: int(candidates[-1]) + 1]
        last_id = rows[-1][0]
        parsed += candidates.size
        for k in chemistry.substructure_matches(query, [rows[i][1] for i in candidates]):
            i = int(candidates[k])
            hit_ids.append(rows[i][0])
            if len(hit_ids) == max_hits:
                rows = rows[: i + 1]
                break
        scanned += len(rows)
    return hit_ids, scanned


def compound_similarity_search(
    *, smiles: str, threshold: float = 0.5, dataset_id: int | None = None, max_hits: int | None = None
) -> StructureSearch:
    """Compounds with Tanimoto ≥ threshold to `smiles` (standardised like a registration),
    most similar first; the registered query compound itself comes first at 1.0.

    Raises ValidationFailed (field "similar_to") for a structure that cannot be parsed.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValidationFailed("threshold must be between 0 and 1", extra={"field": "threshold"})
    max_hits = max_hits or settings.CHEMLOOP_STRUCTURE_SEARCH_MAX_HITS
    scope = _search_scope(dataset_id)
    try:
        # One more than asked, to tell "exactly max_hits" from "more than max_hits".
        nearest = compound_similar(smiles=smiles, k=max_hits + 1, queryset=scope)
    except chemistry.ChemistryError as exc:
        raise ValidationFailed(f"Invalid structure: {exc}", extra={"field": "similar_to"}) from exc
    hits = [s for s in nearest if s.similarity >= threshold]
    for hit in hits:
        hit.compound.similarity = hit.similarity  # type: ignore[attr-defined]
    searchable = scope.count()
    return StructureSearch(
        compounds=[s.compound for s in hits[:max_hits]],
        ranked_by_similarity=True,
        scanned=searchable,
        searchable=searchable,
        max_hits=max_hits,
        hit_limit=len(hits) > max_hits,
    )


def compound_structure_search(
    *, mode: str, query: str, threshold: float = 0.5, dataset_id: int | None = None
) -> StructureSearch:
    """The compound list's and the API's structure search: "substructure" or "similarity"."""
    if mode == "substructure":
        return compound_substructure_search(pattern=query, dataset_id=dataset_id)
    if mode == "similarity":
        return compound_similarity_search(smiles=query, threshold=threshold, dataset_id=dataset_id)
    raise ValueError(f"unknown structure search mode {mode!r}")


EXPORT_COLUMNS = (
    "id", "name", "external_id", "canonical_smiles", "inchikey",
    "mw", "clogp", "tpsa", "hbd", "hba", "rotatable_bonds", "heavy_atoms",
)


def compound_export_rows(*, compounds: list[Compound] | QuerySet[Compound]) -> Iterator[list[Any]]:
    """One row per compound in EXPORT_COLUMNS order, plus `similarity` where a search set it.
    A queryset is read in chunks (only the exported columns), so a 1M-row export stays flat."""
    if isinstance(compounds, QuerySet):
        compounds = compounds.only(*EXPORT_COLUMNS).iterator(chunk_size=2_000)
    for c in compounds:
        row = [getattr(c, column) for column in EXPORT_COLUMNS]
        similarity = getattr(c, "similarity", None)
        yield row if similarity is None else [*row, round(similarity, 4)]


def compound_measurements(*, compound: Compound) -> QuerySet[Measurement]:
    return compound.measurements.select_related("assay", "created_by").order_by("assay__name", "-created_at")


@dataclass(frozen=True)
class SimilarCompound:
    compound: Compound
    similarity: float


SIMILAR_SCAN_CHUNK = 50_000


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
    chunk = SIMILAR_SCAN_CHUNK
    while True:
        ids, matrix = _fingerprint_chunk(qs.filter(id__gt=last_id).values_list("id", "fingerprint")[:chunk])
        if not ids.size:
            break
        last_id = int(ids[-1])
        for i, sim in chemistry.top_k_similar(query_fp, matrix, k):
            best_ids.append(int(ids[i]))
            best_sims.append(sim)
        if ids.size < chunk:
            break
    order = sorted(range(len(best_ids)), key=lambda i: (-best_sims[i], best_ids[i]))[:k]
    by_id = Compound.objects.in_bulk([best_ids[i] for i in order])
    return [SimilarCompound(compound=by_id[best_ids[i]], similarity=best_sims[i]) for i in order]


def _fingerprint_chunk(rows: QuerySet[Compound]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, packed fingerprints) of a `values_list("id", "fingerprint")` query, in its order.

    Through binary COPY on PostgreSQL (0.27 -> 0.10 s per 50,000 rows), which is what
    makes a similarity scan of a 1M registry take seconds, not ten; a row of another
    width (or another database) takes the ordinary read.
    """
    sql, params = rows.query.sql_with_params()
    parsed = copy_fixed_width(sql, params, [8, chemistry.FP_BYTES])
    if parsed is not None:
        return parsed[0].view(">i8").ravel().astype(np.int64), parsed[1]
    listed = list(rows)
    ids = np.fromiter((r[0] for r in listed), dtype=np.int64, count=len(listed))
    if not listed:
        return ids, np.zeros((0, chemistry.FP_BYTES), dtype=np.uint8)
    return ids, chemistry.fingerprints_to_matrix([r[1] for r in listed])


def copy_fixed_width(sql: str, params: Any, widths: list[int]) -> list[np.ndarray] | None:
    """The rows of `sql` through PostgreSQL's binary COPY, one (n, width) uint8 array per
    column (compounds.pgcopy): no Python tuple and no hex-decoded bytea per row.

    None when that is not possible (another database or driver, a NULL or a value of
    another width in the result): the caller reads the rows the ordinary way.
    """
    if connection.vendor != "postgresql":
        return None
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg2's own cursor: Django's wrapper has no copy_expert
        if not hasattr(raw, "copy_expert"):
            return None  # psycopg 3 has cursor.copy instead
        # COPY takes no bind parameters: mogrify quotes them as the driver would.
        raw.copy_expert(f"COPY ({raw.mogrify(sql, params).decode()}) TO STDOUT (FORMAT binary)", buffer)
    return pgcopy.parse_fixed_width(buffer.getbuffer(), widths)


def compound_svg(*, compound_id: int, width: int = 300, height: int = 220) -> str | None:
    row = Compound.objects.filter(pk=compound_id).values_list("canonical_smiles", flat=True).first()
    if row is None:
        return None
    try:
        return chemistry.depict_svg(row, width=width, height=height)
    except chemistry.ChemistryError:
        # A row stored before registration checked that its SMILES reads back (README,
        # "Registration"): the page shows why there is no drawing instead of a 500.
        return chemistry.placeholder_svg("structure cannot be drawn (stored SMILES does not parse)", width=width, height=height)


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


# --- What a delete or an edit would break --------------------------------------------------


def compound_delete_blockers(*, compound_ids: list[int]) -> dict[int, list[str]]:
    """Why each of these compounds must stay, {compound id: reasons}; absent ids may go.

    A compound is provenance once anything refers to it: a validation set keeps it as the
    frozen yardstick every version of a lineage is compared on (deleting it shrinks the set
    while its frozen values do not, so before/after metrics would be on different sets),
    and its measurements and queue items are training data and label history.
    """
    from labeling.models import LabelQueueItem  # labeling depends on compounds, not the reverse

    reasons: dict[int, list[str]] = {}
    through = Compound.validation_sets.through
    for cid, name in through.objects.filter(compound_id__in=compound_ids).values_list(
        "compound_id", "validationset__name"
    ):
        reasons.setdefault(cid, []).append(
            f"it is in the validation set “{name}”, the frozen yardstick its model versions are compared on"
        )
    counts = (
        (Measurement.objects, "measurement", "training data"),
        (LabelQueueItem.objects, "label-queue item", "selection and label history"),
    )
    for manager, noun, why in counts:
        rows = manager.filter(compound_id__in=compound_ids).values("compound_id").annotate(n=Count("id"))
        for cid, n in rows.values_list("compound_id", "n"):
            reasons.setdefault(cid, []).append(f"it has {n} {noun}{'s' if n != 1 else ''} ({why})")
    return reasons


def measurement_delete_blockers(*, measurement_ids: list[int]) -> dict[int, str]:
    """Why each of these measurements must stay, {measurement id: reason}; absent ids may go.

    A queue item's label is corrected on its labeling page (the item, its measurement and
    the audit trail change together). A measurement a trained version already learned is
    part of that version's record: deleting it would silently shrink the next retrain's
    training set with no trace; a wrong value is edited instead. A measurement no version
    has trained on yet may be deleted (admin's own history logs who did it).
    """
    from mlmodels.models import MLModel  # mlmodels depends on compounds, not the reverse

    reasons: dict[int, str] = {}
    rows = Measurement.objects.filter(pk__in=measurement_ids).values_list("pk", "queue_item_id", "assay_id", "created_at")
    for pk, item_id, assay_id, created_at in rows:
        if item_id is not None:
            reasons[pk] = (
                "it is the label of a queue item: correct it with “Correct this label” on the item's labeling page, "
                "so the item and its audit history change with it"
            )
            continue
        learned_by = (
            MLModel.objects.filter(assay_id=assay_id, trained_at__gte=created_at).order_by("-trained_at").first()
        )
        if learned_by is not None:
            reasons[pk] = (
                f"{learned_by.name} v{learned_by.version} trained on it: deleting it would silently change the next "
                "retrain's training set; edit its value instead"
            )
    return reasons


def assay_in_use(*, assay: Any) -> bool:
    """True once an assay has measurements or models: its task type, classes and units then
    say what every stored value means, so changing them would re-interpret those values."""
    return assay.measurements.exists() or assay.models.exists() or assay.validation_sets.exists()
