"""Cycle history (with live retrain progress) and sample selection pages."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from compounds import chemistry
from config import charts
from config.exceptions import ApplicationError, NotFound
from config.roles import LEAD, VIEWER, role_required
from cycles import selectors, services
from cycles.forms import GOALS, SelectionForm
from cycles.models import Job, JobStatus
from cycles.services.selection import SelectionResult, cycle_get
from mlmodels import selectors as model_selectors
from mlmodels import services as model_services
from mlmodels.models import MLModel
from mlmodels.views import metric_spec


def _partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


@role_required(VIEWER)
def history(request: HttpRequest) -> HttpResponse:
    model = selectors.lineage_model_get(model_id=request.GET.get("model"))
    if model is None:
        if request.GET.get("model"):
            raise Http404("No such model.")
        return render(request, "cycles/history.html", {"model": None, "lineages": []})
    # A worker killed mid-job never reports; reading the page turns such a cycle into "failed".
    job_ids = selectors.lineage_training_job_ids(model=model)
    if job_ids:
        services.jobs_reconcile(job_ids=job_ids)
    stats = services.cycle_stats(model=model)
    context = {
        "model": model,
        "lineages": model_selectors.model_lineages(),
        "stats": stats,
        "cycles": _cycle_rows(model, stats),
        "curve": _learning_curve(stats),
    }
    return render(request, "cycles/history.html#timeline" if _partial(request) else "cycles/history.html", context)


def _cycle_rows(model: MLModel, stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Newest first, each with its job and a before/after table signed by each metric's direction."""
    jobs = selectors.jobs_by_id(job_ids=[c["job_id"] for c in stats["cycles"]])
    spec = [(k, label, better) for k, label, better in metric_spec(model) if better]
    rows = []
    for c in reversed(stats["cycles"]):
        before, after = c["metrics_before"] or {}, c["metrics_after"] or {}
        metrics = []
        for key, label, better in spec:
            b, a = before.get(key), after.get(key)
            if b is None and a is None:
                continue
            delta = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
            improved = None if not delta else (delta < 0) == (better == "lower")
            metrics.append({"label": label, "before": b, "after": a, "delta": delta, "improved": improved})
        rows.append({**c, "job": jobs.get(c["job_id"] or ""), "metrics": metrics})
    return rows


def _learning_curve(stats: dict[str, Any]) -> str:
    points = [(p["labels"], p["value"]) for p in stats["learning_curve"] if p["value"] is not None]
    labels = [f"v{p['version']}" for p in stats["learning_curve"] if p["value"] is not None]
    return charts.line_chart(
        points=points,
        point_labels=labels,
        x_label="training labels",
        y_label=stats["primary_metric"].upper(),
        better=stats["direction"],
    )


@role_required(VIEWER)
def job_progress(request: HttpRequest, pk: Any) -> HttpResponse:
    """Progress fragment polled every second; status 286 stops the polling and the page reloads."""
    job = get_object_or_404(Job, pk=pk)
    if not job.is_finished:
        services.jobs_reconcile(job_ids=[job.pk])
        job.refresh_from_db()
    html = render_to_string("cycles/history.html#progress", {"job": job}, request=request)
    if not job.is_finished:
        return HttpResponse(html)
    response = HttpResponseStopPolling(html)
    if job.kind == "select":
        # A background selection: on to its new cycle's queue; a failure stays on the page.
        if job.status == JobStatus.SUCCEEDED:
            cycle = job.result
            messages.success(request, f"Cycle #{cycle['cycle_number']} opened: {cycle['items']} compound{pluralize(cycle['items'])} queued.")
            response["HX-Redirect"] = f"{reverse('labeling:queue')}?cycle={cycle['cycle_id']}&model={cycle['model_id']}"
        return response
    # Reload so the finished cycle's metrics, versions and learning curve all appear.
    response["HX-Refresh"] = "true"
    return response


@require_POST
@role_required(LEAD)
def cycle_retrain(request: HttpRequest, pk: Any) -> HttpResponse:
    return _cycle_action(request, pk, services.cycle_retrain_trigger, "Retraining started")


@require_POST
@role_required(LEAD)
def cycle_retry(request: HttpRequest, pk: Any) -> HttpResponse:
    return _cycle_action(request, pk, services.cycle_retry, "Retry started")


def _cycle_action(request: HttpRequest, pk: Any, action: Any, done: str) -> HttpResponse:
    try:
        cycle = cycle_get(cycle_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    try:
        action(cycle_id=cycle.pk, user=request.user)
        messages.success(request, f"{done} for cycle #{cycle.cycle_number}; progress is shown below.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(f"{reverse('cycles:history')}?model={cycle.model_id}#cycle-{cycle.cycle_number}")


@role_required(LEAD)
def selection(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST action=preview: the ranked batch and map. POST action=queue: open the cycle."""
    data = request.POST if request.method == "POST" else None
    model = selectors.lineage_model_get(model_id=(data or request.GET).get("model"))
    catalog = _catalog_for(model)
    form = SelectionForm(data, catalog=catalog, initial={"model": model, **_default_choice(catalog, model)})
    context: dict[str, Any] = {"form": form, "catalog": catalog, "goals": GOALS, "model": model, "result": None}
    if data is not None and form.is_valid():
        action = data.get("action")
        try:
            if action == "background":
                context["job"] = _select_in_background(request, form)
            else:
                result = _select(request, form, preview=action != "queue")
        except ApplicationError as exc:
            field = exc.extra.get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            if action == "queue":
                cycle = result.cycle
                messages.success(request, f"Cycle #{cycle.cycle_number} opened: {len(result.candidates)} compound{pluralize(len(result.candidates))} queued.")
                return redirect(f"{reverse('labeling:queue')}?cycle={cycle.pk}&model={cycle.model_id}")
            if action != "background":
                context.update(result=result, space_map=_space_map(result), new_structures=_new_structures(result))
    if _partial(request) and request.method == "POST":
        return render(request, "cycles/selection.html#preview", context)
    return render(request, "cycles/selection.html", context, status=400 if form.errors else 200)


def _catalog_for(model: MLModel | None) -> list[dict[str, Any]]:
    catalog = services.strategy_catalog()
    if model is None:
        return catalog
    task = "classification" if model.assay.is_classification else "regression"
    return [s for s in catalog if task in s["tasks"]]


def _default_choice(catalog: list[dict[str, Any]], model: MLModel | None) -> dict[str, Any]:
    """The benchmarks' winner for the model's goal (a hit-finding model → find the best compounds)."""
    from mlmodels.ml import presets

    hit_finding = model is not None and (model.featurizer or {}).get("name") == presets.HIT_FINDING_NAME
    if hit_finding:
        preset = presets.HIT_FINDING
    elif model is not None and model.assay.is_classification:
        preset = presets.CLASSIFICATION_IMPROVEMENT
    else:
        preset = presets.MODEL_IMPROVEMENT
    names = [s["name"] for s in catalog]
    if preset["strategy"] not in names:
        return {"strategy": names[0] if names else ""}
    choice = {"strategy": preset["strategy"], "batch": preset["params"].get("batch", "top")}
    warmup = preset["params"].get("warmup")
    if warmup:
        choice.update(warmup=warmup["strategy"], warmup_until=warmup["until_labeled"])
        choice["design_target"] = (warmup.get("params") or {}).get("target", "pool")
    if "ensemble_weight" in preset["params"]:
        choice["design_ensemble_weight"] = preset["params"]["ensemble_weight"]
    return choice


def _selection_request(request: HttpRequest, form: SelectionForm) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "model": data["model"],
        "user": request.user,
        "strategy": data["strategy"],
        "batch_size": data["batch_size"],
        "params": form.params(),
        "pool": form.pool_spec(),
        "random_state": data["seed"] if data.get("seed") is not None else 0,
    }


def _select(request: HttpRequest, form: SelectionForm, *, preview: bool) -> SelectionResult:
    return services.cycle_select(**_selection_request(request, form), preview=preview, with_pool_fingerprints=preview)


def _select_in_background(request: HttpRequest, form: SelectionForm) -> Job:
    return services.cycle_select_start(**_selection_request(request, form))


def _new_structures(result: SelectionResult) -> dict[int, str]:
    """Pictures of pasted structures a preview scored without registering (no structure URL yet)."""
    return {
        c.rank: chemistry.depict_svg(c.compound.canonical_smiles, width=160, height=110)
        for c in result.candidates
        if not c.registered
    }


def _space_map(result: SelectionResult) -> dict[str, Any] | None:
    if result.pool_fingerprints is None or result.chosen_indices is None:
        return None
    try:
        labeled = model_services.model_training_fingerprints(art=model_services.model_load(model=result.model))
    except ApplicationError:
        labeled = None
    space = selectors.selection_space_map(
        pool_fingerprints=result.pool_fingerprints,
        chosen_indices=result.chosen_indices,
        labeled_fingerprints=labeled,
        chosen_titles=[f"#{c.rank} {c.compound.label}" for c in result.candidates],
    )
    groups = [
        charts.PointGroup("unlabeled pool", charts.GREY, space.pool, radius=2.2, opacity=0.45),
        charts.PointGroup("labeled (training)", charts.BLUE, space.labeled, radius=2.6, opacity=0.55),
        charts.PointGroup("proposed batch", charts.ORANGE, space.chosen, radius=5, opacity=0.95,
                          titles=space.chosen_titles),
    ]
    x_label = f"PC 1 ({space.explained[0]:.0%} of variance)"
    y_label = f"PC 2 ({space.explained[1]:.0%})"
    return {"svg": charts.scatter_map(groups=groups, x_label=x_label, y_label=y_label), "sampled": len(space.pool),
            "pool_total": space.pool_total}
