"""Label queue and labeling pages (HTMX): parse input, call one service, render."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from compounds.models import Assay
from config import charts
from config.csv_export import csv_response
from config.exceptions import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from config.paginator import DeferredJoinPaginator
from config.roles import LEAD, SCIENTIST, VIEWER, has_role, role_required, user_roles
from labeling import selectors, services
from labeling.forms import BulkActionForm, CorrectLabelForm, LabelForm, QueueFilterForm, labelers
from labeling.models import LabelQueueItem
from mlmodels import selectors as model_selectors
from mlmodels.models import MLModel

PAGE_SIZE = 25
# Distance to the training set above which a prediction is an extrapolation.
APPLICABILITY_WARNING = 0.6
# Clicking a sorted column again reverses it.
SORT_COLUMNS = ("priority", "uncertainty", "prediction", "created")


def _partial(request: HttpRequest) -> bool:
    """A fragment for htmx swaps; a full page for normal loads and htmx history restores."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def _filtered_queue(request: HttpRequest, *, default_status: str) -> tuple[QueueFilterForm, dict[str, Any], Any]:
    """The queue filters of the page and the export, read the same way from the query string."""
    form = QueueFilterForm(request.GET or None)
    # A filter that does not parse is dropped on its own (and named on the page), not with
    # the valid ones beside it: `?model=3&status=bogus` used to show every model's items.
    f: dict[str, Any] = {}
    if form.is_bound:
        form.is_valid()  # cleaned_data then holds the fields that parsed, and only those
        f = dict(form.cleaned_data)
    f["status"] = f.get("status") or default_status
    f["assigned"] = f.get("assigned_to") or ""
    f["sort"] = f.get("sort") or "priority"
    items = selectors.queue_items_list(
        status=None if f["status"] == "all" else f["status"],
        assigned_to=request.user.pk if f["assigned"] == "me" else (f["assigned"] or None),
        model_id=f.get("model"),
        cycle_id=f.get("cycle"),
        ordering=f["sort"],
    )
    return form, f, items


@role_required(VIEWER)
def queue(request: HttpRequest) -> HttpResponse:
    """The label queue, filtered, sorted and paginated; htmx swaps only its rows.

    The whole page (or the rows fragment) is cached per user, roles and query string,
    stamped with the queue version it was rendered at: under load most requests are
    re-reads of a queue nobody changed, and rendering costs far more than serving. A
    hit is one Redis round trip (version + page) and no template work. Every service
    that changes queue items bumps the version (labeling.services.queue_changed), so a
    page of an older version is never served; names shown beside items (compound
    label, model, assignee) may lag by at most settings.QUEUE_PAGE_CACHE_SECONDS. The
    page is cached with a placeholder where the session's CSRF token goes, and a page
    with flash messages to show is rendered, not cached.
    """
    partial = _partial(request)
    seconds = settings.QUEUE_PAGE_CACHE_SECONDS
    if not seconds:
        return _queue_response(request, _queue_render(request, partial=partial, csrf=None), partial=partial)
    key = _queue_cache_key(request, "rows" if partial else "page")
    got = cache.get_many([selectors.QUEUE_VERSION_KEY, key])
    version = got.get(selectors.QUEUE_VERSION_KEY)
    if version is None:
        version = selectors.queue_cache_version()
    cacheable = partial or not len(get_messages(request))  # len() does not consume them
    hit = got.get(key)
    if cacheable and isinstance(hit, tuple) and hit[0] == version:
        html = hit[1]
    else:
        html = _queue_render(request, partial=partial, csrf=_CSRF_PLACEHOLDER if cacheable else None)
        if cacheable:
            cache.set(key, (version, html), seconds)
    return _queue_response(request, html, partial=partial)


# Stands in for the session's CSRF token in a cached page; swapped on every response.
_CSRF_PLACEHOLDER = "chemloop-csrf-placeholder-5b1e0c"


def _queue_render(request: HttpRequest, *, partial: bool, csrf: str | None) -> str:
    if partial:
        return render_to_string("labeling/queue_body.html#rows", _queue_context(request), request)
    context = _queue_context(request)
    if csrf is not None:
        context["csrf_token"] = csrf  # wins over the csrf context processor
    return render_to_string("labeling/queue.html", context, request)


def _queue_response(request: HttpRequest, html: str, *, partial: bool) -> HttpResponse:
    if not partial and _CSRF_PLACEHOLDER in html:
        # get_token also marks the CSRF cookie for setting, as {% csrf_token %} would.
        html = html.replace(_CSRF_PLACEHOLDER, get_token(request))
    return HttpResponse(html)


def _queue_cache_key(request: HttpRequest, part: str) -> str:
    roles = ",".join(sorted(user_roles(request.user)))
    path = hashlib.sha256(request.get_full_path().encode()).hexdigest()[:32]
    return f"labeling:queue:{part}:{request.user.pk}:{roles}:{path}"


def _ignored_filters(form: QueueFilterForm) -> str:
    return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())


def _queue_context(request: HttpRequest) -> dict[str, Any]:
    form, f, items = _filtered_queue(request, default_status="open")
    sort = f["sort"]
    return {
        "ignored_filters": _ignored_filters(form) if form.errors else "",
        # The page's ids first (label_queue alone, in queue order), then those rows with their
        # joins. Without fresh statistics the planner joined every open item before sorting:
        # 85.6 ms a page of 10,000 items, 35.1 ms this way (BENCHMARKS.md, seventeenth session).
        "page": DeferredJoinPaginator(items, PAGE_SIZE).get_page(request.GET.get("page")),
        "form": form,
        "status": f["status"],
        "assigned": f["assigned"],
        "sort": sort,
        "sort_next": {c: (f"-{c}" if sort == c else c) for c in SORT_COLUMNS},
        "model_id": f.get("model"),
        "cycle_id": f.get("cycle"),
        "models": MLModel.objects.select_related("assay").order_by("name", "-version"),
        "labelers": labelers(),
        "counts": selectors.queue_counts(
            model_id=f.get("model"),
            assigned_to=request.user.pk if f["assigned"] == "me" else (f["assigned"] or None),
            cycle_id=f.get("cycle"),
        ),
    }


@role_required(VIEWER)
def queue_export(request: HttpRequest) -> HttpResponse:
    """The filtered queue as CSV; cells are escaped so a spreadsheet never runs a formula."""
    form, _f, items = _filtered_queue(request, default_status="all")
    if form.errors:
        # A file is not a page that can say which filter it ignored: refuse, naming it.
        return HttpResponseBadRequest(_ignored_filters(form), content_type="text/plain; charset=utf-8")
    header, rows = selectors.queue_export_table(items=items)
    return csv_response("label-queue.csv", header, rows)


@require_POST
@role_required(LEAD)
def queue_bulk(request: HttpRequest) -> HttpResponse:
    form = BulkActionForm(request.POST)
    back = _safe_next(request, request.POST.get("next"), reverse("labeling:queue"))
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(back)
    data = form.cleaned_data
    ids, action = data["items"], data["action"]
    try:
        if action in ("assign", "unassign"):
            assignee = data["assignee"] if action == "assign" else None
            outcome = services.queue_items_assign(
                item_ids=ids, assignee_id=assignee.pk if assignee else None, user=request.user
            )
            verb = f"Assigned to {assignee.username}" if assignee else "Unassigned"
        elif action == "skip":
            outcome, verb = services.queue_items_skip(item_ids=ids, user=request.user), "Skipped"
        else:
            outcome, verb = services.queue_items_reset(item_ids=ids, user=request.user), "Reset to pending"
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    n = outcome.done
    # The services' own reasons (e.g. "belongs to Solubility v1, which is superseded"), counted.
    note = f" {outcome.refusals_text()}." if outcome.refused else ""
    (messages.success if n else messages.warning)(request, f"{verb}: {n} item{'s' if n != 1 else ''}.{note}")
    return redirect(back)


def _safe_next(request: HttpRequest, url: str | None, default: str) -> str:
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        return url
    return default


@never_cache
@role_required(VIEWER)
def labeling(request: HttpRequest) -> HttpResponse:
    """The Labeling tab: a scientist gets their next item (claimed); others see the top open item."""
    model_id = _int(request.GET.get("model"))
    if model_id is not None:
        # A bookmarked filter on a version that a retrain replaced: its items are on the new one.
        active_id = model_selectors.lineage_active_version_id(model_id=model_id)
        if active_id is not None and active_id != model_id:
            return redirect(_with_model(reverse("labeling:labeling"), active_id))
    if not has_role(request.user, SCIENTIST):
        top = selectors.queue_pending_items(model_id=model_id, limit=1)
        if top:
            return redirect(_with_model(reverse("labeling:item", args=[top[0].pk]), model_id))
        return render(request, "labeling/empty.html", {})
    url = _claim_next_url(request, model_id)
    if url is not None:
        return redirect(url)
    return render(request, "labeling/empty.html", {})


def _claim_next_url(request: HttpRequest, model_id: int | None) -> str | None:
    """Claim the scientist's next item and give its page's URL (None: nothing left)."""
    try:
        item = services.queue_item_claim_next(user=request.user, model_id=model_id)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return None
    return _with_model(reverse("labeling:item", args=[item.pk]), model_id) if item is not None else None


def _go_next(request: HttpRequest) -> HttpResponse:
    """After a save or skip, straight to the next claimed item's page: one round trip
    instead of three (HX-Redirect to the Labeling tab, its claim, its 302)."""
    model_id = _model_filter(request)
    return _go(request, _claim_next_url(request, model_id) or _with_model(reverse("labeling:labeling"), model_id))


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _get_item_for_user(request: HttpRequest, pk: Any) -> LabelQueueItem:
    """Every role (viewer and up) may read any item; acting on it is checked by the services."""
    try:
        return selectors.queue_item_get(item_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc


# Item pages and their fragments are never stored: Back after a save or skip would
# otherwise show the item's old page (bfcache or HTTP cache) with a form that still
# looks editable. no-store makes the browser ask again and get the item as it is now.
@never_cache
@role_required(VIEWER)
def item_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    item = _get_item_for_user(request, pk)
    form = LabelForm(initial={"source": "experimental", "confidence": "high"})
    return render(request, "labeling/item.html", _item_context(request, item, form))


@never_cache
@require_POST
@role_required(SCIENTIST)
def item_submit(request: HttpRequest, pk: Any) -> HttpResponse:
    item = _get_item_for_user(request, pk)
    form = LabelForm(request.POST)
    if form.is_valid() and item.model.assay.is_classification and not form.cleaned_data["value"]:
        # No radio checked posts no value: the service's "value is empty" would not say what to do.
        form.add_error("value", "pick a class")
    if form.is_valid():
        typed = form.cleaned_data["value"]
        try:
            done = services.label_submit(item_id=item.pk, user=request.user, **form.cleaned_data)
            messages.success(request, f"Saved {done.model.assay.format_value(done.label)} for {item.compound.label}.")
            return _go_next(request)
        except ValidationFailed as exc:
            form.add_error(exc.extra.get("field") if exc.extra.get("field") in form.fields else None, exc.message)
        except Conflict as exc:
            # Someone else got there first: say so on the item's page, which now shows their label.
            messages.error(request, f"{exc.message} {_not_saved(typed, sentence=True)}")
            return _go(request, _with_model(reverse("labeling:item", args=[item.pk]), _model_filter(request)))
        except PermissionDenied as exc:
            # Taken or reassigned while the page was open: answer in the label panel, where the
            # scientist is looking, with what happened to their value and where to go next.
            item = _get_item_for_user(request, pk)
            return _refused(request, item, f"{_taken_text(item, exc.message)}; {_not_saved(typed)}")
    context = _item_context(request, item, form)
    if _partial(request):
        return render(request, "labeling/item.html#label_form", context)
    return render(request, "labeling/item.html", context, status=400)


def _not_saved(typed: str, *, sentence: bool = False) -> str:
    text = f"your value {typed} was not saved." if typed else "nothing was saved."
    return text[:1].upper() + text[1:] if sentence else text


def _taken_text(item: LabelQueueItem, fallback: str) -> str:
    """Who holds the item now and how they got it, from its latest history event."""
    if item.assigned_to_id is None:
        return fallback.rstrip(".")
    holder = item.assigned_to.username
    last = selectors.queue_item_events(item=item).first()
    if last is not None and last.action == "assign" and last.actor is not None and last.actor_id != item.assigned_to_id:
        return f"{last.actor.username} assigned this item to {holder} while you had it open"
    if last is not None and last.action == "claim" and last.actor_id == item.assigned_to_id:
        return f"{holder} took this item while you had it open"
    return f"This item is assigned to {holder} now"


def _refused(request: HttpRequest, item: LabelQueueItem, text: str) -> HttpResponse:
    """The label panel with a refusal in it. htmx gets the fragment as a 200, as for form
    errors (it swaps no 4xx); a plain form post gets the page with its real status."""
    context = _item_context(request, item, LabelForm())
    context["refusal"] = text
    if _partial(request):
        return render(request, "labeling/item.html#label_form", context)
    return render(request, "labeling/item.html", context, status=403)


@never_cache
@require_POST
@role_required(SCIENTIST)
def item_skip(request: HttpRequest, pk: Any) -> HttpResponse:
    item = _get_item_for_user(request, pk)
    try:
        services.queue_item_skip(item_id=item.pk, user=request.user, reason=request.POST.get("notes", "").strip())
    except (Conflict, ValidationFailed) as exc:
        messages.error(request, exc.message)
        return _go(request, _with_model(reverse("labeling:item", args=[item.pk]), _model_filter(request)))
    except PermissionDenied as exc:
        item = _get_item_for_user(request, pk)
        messages.error(request, f"{_taken_text(item, exc.message)}; your skip was not recorded.")
        return _go(request, _with_model(reverse("labeling:item", args=[item.pk]), _model_filter(request)))
    # The next page offers to undo it (a stray S is one key away from Save).
    request.session[_LAST_SKIP] = str(item.pk)
    messages.info(request, f"Skipped {item.compound.label}.")
    return _go_next(request)


_LAST_SKIP = "labeling:last-skip"


@never_cache
@require_POST
@role_required(SCIENTIST)
def item_unskip(request: HttpRequest, pk: Any) -> HttpResponse:
    """Undo a skip (the scientist who skipped it, or a lead): the item is pending again."""
    item = _get_item_for_user(request, pk)
    try:
        services.queue_item_reset(item_id=item.pk, user=request.user)
    except (Conflict, PermissionDenied) as exc:
        messages.error(request, exc.message)
    else:
        request.session.pop(_LAST_SKIP, None)
        messages.success(request, f"Skip undone: {item.compound.label} is back in the queue.")
    return _go(request, _with_model(reverse("labeling:item", args=[item.pk]), _model_filter(request)))


@never_cache
@require_POST
@role_required(SCIENTIST)
def item_correct(request: HttpRequest, pk: Any) -> HttpResponse:
    """Correct a stored label (a lead, or its labeler before a retrain learned it); the
    old value and the reason stay in the item's history."""
    item = _get_item_for_user(request, pk)
    form = CorrectLabelForm(request.POST)
    if form.is_valid():
        try:
            old = item.label
            done = services.label_correct(item_id=item.pk, user=request.user, **form.cleaned_data)
            fmt = done.model.assay.format_value
            messages.success(request, f"Corrected the label of {item.compound.label}: {fmt(old)} → {fmt(done.label)}.")
            return _go(request, reverse("labeling:item", args=[item.pk]))
        except ValidationFailed as exc:
            form.add_error("notes" if exc.extra.get("field") == "notes" else "value", exc.message)
        except (Conflict, PermissionDenied) as exc:
            messages.error(request, exc.message)
            return _go(request, reverse("labeling:item", args=[item.pk]))
    context = _item_context(request, item, LabelForm(), correct_form=form)
    return render(request, "labeling/item.html", context, status=400)


def _go(request: HttpRequest, url: str) -> HttpResponse:
    # htmx form posts navigate the whole page, so the next item gets a fresh URL and history entry.
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _initial_value(assay: Assay, value: float | None) -> str:
    # What the form posts back: the class name for a classification assay (the page's
    # radios and select carry names, so a class named "1" is never read as index 1).
    if value is None:
        return ""
    return assay.format_value(value) if assay.is_classification else f"{value:g}"


def _item_context(
    request: HttpRequest, item: LabelQueueItem, form: LabelForm, correct_form: CorrectLabelForm | None = None
) -> dict[str, Any]:
    user, assay = request.user, item.model.assay
    may_act = item.is_open and has_role(user, SCIENTIST) and (
        item.assigned_to_id in (None, user.pk) or has_role(user, LEAD)
    )
    classes = list(enumerate(assay.classes)) if assay.is_classification else []
    # Classification items store the entropy of the mean probabilities in nats; the
    # selection's "uncertainty" component is the same entropy divided by ln K (0–1).
    entropy_share = None
    if classes and len(classes) > 1 and item.uncertainty is not None:
        entropy_share = item.uncertainty / math.log(len(classes))
    predicted_class = None
    if item.probabilities:
        predicted_class = max(range(len(item.probabilities)), key=lambda i: item.probabilities[i])
    predictive = None if classes else model_selectors.predictive_std(model=item.model, std=item.uncertainty)
    return {
        "item": item,
        "compound": item.compound,
        "assay": assay,
        "form": form,
        "classes": classes,
        "may_act": may_act,
        "predicted_class": predicted_class,
        "entropy_share": entropy_share,
        "prediction_chart": _prediction_chart(item, predictive),
        "coverage": (item.model.metrics or {}).get("coverage_95"),
        "calibrated": bool((item.model.metrics or {}).get("uncertainty_calibration")),
        "predictive_std": predictive,
        "out_of_domain": (item.applicability_distance or 0) > APPLICABILITY_WARNING,
        "ad_threshold": APPLICABILITY_WARNING,
        "similar": model_selectors.assay_similar_labeled(compound=item.compound, assay=assay, k=5),
        "why": _why_selected(item),
        "next_item": _next_item(request, item, _model_filter(request)),
        "model_filter": _model_filter(request),
        "next_url": _with_model(reverse("labeling:labeling"), _model_filter(request)),
        "may_correct": selectors.label_correct_allowed(item=item, user=user),
        "may_unskip": selectors.queue_item_unskip_allowed(item=item, user=user),
        "last_skip": _last_skip(request, item),
        "correct_form": correct_form or CorrectLabelForm(initial={"value": _initial_value(assay, item.label)}),
        "events": selectors.queue_item_events(item=item)[:8],
    }


def _last_skip(request: HttpRequest, shown: LabelQueueItem) -> LabelQueueItem | None:
    """The item this user skipped last in this session, while they may still undo it."""
    pk = request.session.get(_LAST_SKIP)
    if not pk or pk == str(shown.pk):
        return None
    try:
        skipped = selectors.queue_item_get(item_id=pk)
    except NotFound:
        return None
    return skipped if selectors.queue_item_unskip_allowed(item=skipped, user=request.user) else None


def _prediction_chart(item: LabelQueueItem, predictive_std: float | None) -> str:
    assay = item.model.assay
    if assay.is_classification and item.probabilities:
        return charts.probability_bars(classes=assay.classes, probabilities=item.probabilities)
    if item.prediction is None:
        return ""
    span = model_selectors.assay_value_range(assay=assay) or (item.prediction - 1, item.prediction + 1)
    return charts.interval_bar(mean=item.prediction, std=predictive_std or 0.0, lo=span[0], hi=span[1], units=assay.units)


def _next_item(request: HttpRequest, item: LabelQueueItem, model_id: int | None) -> LabelQueueItem | None:
    """The open item after this one in priority order, among those this user may take."""
    user = request.user if has_role(request.user, SCIENTIST) else None
    return selectors.queue_next_item(after=item, user=user, model_id=model_id)


def _model_filter(request: HttpRequest) -> int | None:
    """The Labeling tab's model filter, carried from page to page (?model= / a hidden field)."""
    return _int(request.GET.get("model") or request.POST.get("model"))


def _with_model(url: str, model_id: int | None) -> str:
    return f"{url}?model={model_id}" if model_id else url


COMPONENT_LABELS = {
    "uncertainty": "Uncertainty",
    "margin": "Margin (closeness to the decision boundary)",
    "applicability": "Distance to the training set",
    "entropy": "Predictive entropy",
    "least_confidence": "Least confidence",
    "ratio": "Ratio of the top two classes",
    "bald": "Member disagreement (BALD)",
    "random": "Random draw",
    "greedy": "Predicted value",
    "ucb": "Upper confidence bound",
    "expected_improvement": "Expected improvement",
    "predicted": "Predicted value",
    "predicted_class": "Predicted class",
    "p_top": "Probability of the predicted class",
    "max_sim_to_labeled": "Similarity to the nearest labeled compound",
    "cluster": "Diversity cluster",
    "cluster_size": "Cluster size",
    "distance_to_threshold": "Distance of the prediction to the threshold",
    "round": "Class-balanced round (1 = the best of each predicted class)",
    "p_second": "Probability of the second class",
}
# For regression the hybrid's "margin" is how close the prediction sits to a threshold
# (the pool's median prediction unless one is given), as a negative distance.
REGRESSION_LABELS = {
    "margin": "Closeness to the threshold (minus the distance; median prediction unless set)",
    "uncertainty": "Uncertainty (ensemble std)",
}
# The classification "uncertainty" is normalised entropy, not the nats on the prediction card.
CLASSIFICATION_LABELS = {"uncertainty": "Uncertainty (predictive entropy ÷ ln K: 0 sure, 1 uniform)"}


def _why_selected(item: LabelQueueItem) -> dict[str, Any]:
    """Score components as readable rows: raw value, normalised value (0–1) and hybrid weight."""
    comps = dict(item.score_components or {})
    weights = ((item.cycle.strategy_params or {}).get("weights") or {}) if item.cycle else {}
    assay = item.model.assay
    labels = {**COMPONENT_LABELS, **(CLASSIFICATION_LABELS if assay.is_classification else REGRESSION_LABELS)}
    rows = []
    for key, value in comps.items():
        if key in ("rank", "score", "nearest_labeled", "model_version") or key.endswith("_normalized"):
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        shown: Any = value
        if key == "predicted_class" and assay.is_classification:
            shown = assay.format_value(value)  # the class name, not its index
        elif key == "round":
            shown = str(int(value) + 1)
        rows.append(
            {
                "key": key,
                "label": labels.get(key, key.replace("_", " ").capitalize()),
                "value": shown,
                "normalized": comps.get(f"{key}_normalized"),
                "weight": weights.get(key),
            }
        )
    rank = comps.get("rank")
    picked_by = comps.get("picked_by")
    version = comps.get("model_version")  # absent on items selected before it was recorded
    return {
        "version": version,
        "rescored": isinstance(version, int) and version != item.model.version,
        # A compound picked during a warm-up schedule names the strategy that chose it.
        "strategy": f"{picked_by} (warm-up of {item.selection_strategy})" if picked_by else item.selection_strategy,
        "rank": rank + 1 if isinstance(rank, int) else None,
        "score": comps.get("score", item.priority_score),
        "rows": rows,
        "batch": item.cycle.selection_strategy if item.cycle else None,
    }

