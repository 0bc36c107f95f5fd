from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.html import format_html
from django.views.decorators.http import require_GET

from compounds import chemistry, selectors, services
from compounds.forms import ImportForm, SearchForm, SearchMode
from compounds.models import Compound, Dataset
from config.csv_export import csv_response
from config.exceptions import ApplicationError, ValidationFailed
from config.paginator import DeferredJoinPaginator
from config.roles import LEAD, VIEWER, role_required


@dataclass
class _ListSearch:
    """The compound list's search, as the page and its CSV download both read it."""

    form: SearchForm
    query: str
    mode: str
    threshold: float
    search: selectors.StructureSearch | None
    error: str
    results: list[Compound] | QuerySet[Compound]


def _list_search(request: HttpRequest) -> _ListSearch:
    form = SearchForm(request.GET or None)
    query, mode, threshold, dataset_id = "", SearchMode.TEXT, 0.5, None
    if form.is_valid():
        query, dataset_id = form.cleaned_data["q"] or "", form.cleaned_data["dataset"]
        mode, threshold = form.cleaned_data["mode"], form.cleaned_data["threshold"]
    search, error = None, _form_error(form)
    if query.strip() and mode != SearchMode.TEXT:
        try:
            search = selectors.compound_structure_search(
                mode=mode, query=query, threshold=threshold, dataset_id=dataset_id
            )
        except ValidationFailed as exc:
            error = exc.message
    results: list[Compound] | QuerySet[Compound]
    if search is not None or error:
        results = search.compounds if search else []
    else:
        results = selectors.compound_search(query=query, dataset_id=dataset_id)
    return _ListSearch(form, query, mode, threshold, search, error, results)


@role_required(VIEWER)
def compound_list(request: HttpRequest) -> HttpResponse:
    s = _list_search(request)
    context = {
        "page": DeferredJoinPaginator(s.results, 25).get_page(request.GET.get("page")),
        "form": s.form,
        "query": s.query,
        "mode": s.mode,
        "modes": SearchMode.choices,
        "threshold": s.threshold,
        "search": s.search,
        "search_error": s.error,
        "datasets": Dataset.objects.all(),
    }
    template = "compounds/list.html#results" if request.htmx else "compounds/list.html"
    return render(request, template, context)


@role_required(VIEWER)
@require_GET
def compound_export(request: HttpRequest) -> HttpResponse:
    """What the list shows (every page), as CSV or (`format=sdf`) SDF with 2-D coordinates;
    a similarity search adds its Tanimoto column / field."""
    s = _list_search(request)
    if s.error:
        return HttpResponse(s.error, status=400, content_type="text/plain; charset=utf-8")
    header = [*selectors.EXPORT_COLUMNS, *(["similarity"] if s.search and s.search.ranked_by_similarity else [])]
    rows = selectors.compound_export_rows(compounds=s.results)
    if request.GET.get("format") == "sdf":
        size = len(s.results) if isinstance(s.results, list) else s.results.count()
        if size > settings.CHEMLOOP_SDF_EXPORT_MAX:
            return HttpResponse(
                f"An SDF download computes 2-D coordinates (~0.8 ms a compound), so it holds at most "
                f"{settings.CHEMLOOP_SDF_EXPORT_MAX:,} compounds; this search has {size:,}. "
                "Narrow it (dataset, substructure) or download CSV.",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        smiles_at = header.index("canonical_smiles")
        records = ((row[smiles_at], dict(zip(header, row, strict=True))) for row in rows)
        response = StreamingHttpResponse(chemistry.sdf_records(records), content_type="chemical/x-mdl-sdfile")
        response["Content-Disposition"] = 'attachment; filename="compounds.sdf"'
        return response
    return csv_response("compounds.csv", header, rows)


def _form_error(form: SearchForm) -> str:
    """The first problem with the search fields, as one line (the form is not rendered field by field)."""
    for field, errors in form.errors.items():
        return f"{field}: {errors[0]}"
    return ""


@role_required(VIEWER)
def compound_detail(request: HttpRequest, pk: int) -> HttpResponse:
    compound = get_object_or_404(Compound, pk=pk)
    context = {
        "compound": compound,
        "measurements": selectors.compound_measurements(compound=compound),
        "datasets": compound.datasets.all(),
        "extra_panels": _detail_panels(compound),
    }
    return render(request, "compounds/detail.html", context)


@require_GET
@role_required(VIEWER)
def compound_similar(request: HttpRequest, pk: int) -> HttpResponse:
    """The detail page's nearest structures, loaded after the page (a full registry scan)."""
    compound = get_object_or_404(Compound, pk=pk)
    similar = selectors.compound_similar(compound=compound, k=8)
    return render(request, "compounds/detail.html#similar", {"compound": compound, "similar": similar})


def _detail_panels(compound: Compound) -> list[str]:
    """Model predictions and atom maps, loaded after the page so scoring never delays it."""
    url = reverse("mlmodels:compound_predictions", args=[compound.pk])
    return [
        format_html(
            '<section hx-get="{}" hx-trigger="load" hx-swap="outerHTML" class="predictions">'
            '<h4>Model predictions</h4><p class="muted" aria-busy="true">Scoring with the active models…</p></section>',
            url,
        )
    ]


@require_GET
@role_required(VIEWER)
def compound_structure(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        width = min(max(int(request.GET.get("w", 300)), 60), 1200)
        height = min(max(int(request.GET.get("h", 220)), 60), 1200)
    except ValueError:
        width, height = 300, 220
    key = f"svg:{pk}:{width}x{height}"
    svg = cache.get(key)
    if svg is None:
        svg = selectors.compound_svg(compound_id=pk, width=width, height=height)
        if svg is None:
            raise Http404("No such compound")
        cache.set(key, svg, 60 * 60 * 24)
    response = HttpResponse(svg, content_type="image/svg+xml")
    patch_cache_control(response, private=True, max_age=3600)
    return response


@role_required(LEAD)
def compound_import(request: HttpRequest) -> HttpResponse:
    report = None
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            new_assay = None
            if data["assay"] is None and data["new_assay"]:
                new_assay = {
                    "name": data["new_assay"], "task_type": data["task_type"] or "regression", "units": data["units"],
                    "classes": data["classes"],
                }
            upload = data["file"]
            report = services.compounds_import(
                stream=upload.file,
                filename=upload.name,
                dataset_name=data["dataset"],
                assay=data["assay"],
                new_assay=new_assay,
                value_column=data["value_column"] or None,
                smiles_column=data["smiles_column"] or None,
                name_column=data["name_column"] or None,
                user=request.user,
            )
            if report.imported:
                messages.success(
                    request,
                    f"Imported {report.imported} compound{pluralize(report.imported)} into “{report.dataset_name}” "
                    f"({report.created} new, {report.existing} already registered, {report.invalid} rows rejected, "
                    f"{report.values_skipped} registered without a value).",
                )
            else:
                messages.error(request, f"Nothing imported: none of the {report.total_rows} rows could be read (see below).")
        except ApplicationError as exc:
            form.add_error(exc.extra.get("field") if exc.extra.get("field") in form.fields else None, exc.message)
    return render(request, "compounds/import.html", {"form": form, "report": report})
