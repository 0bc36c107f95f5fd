"""Request-wide guards: a lost database connection is a clean 503, input no view can use a 400."""

from collections.abc import Callable
from typing import Any

from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from config.db_errors import LOCK_CONFLICT_MESSAGE, is_lock_conflict


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        if is_lock_conflict(exception):
            # Not an outage: PostgreSQL undid this request's transaction (a deadlock or a
            # lock timeout with another change to the same rows); a retry succeeds.
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": LOCK_CONFLICT_MESSAGE}, status=409)
            return HttpResponse(
                render_to_string("503.html", {"title": "Please retry", "message": LOCK_CONFLICT_MESSAGE}), status=409
            )
        # Every write runs in a transaction, so nothing was half-written; the
        # broken connection is closed at the end of this request and the retry
        # gets a fresh one.
        message = "The database is unavailable right now; nothing was saved. Please retry in a moment."
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"detail": message}, status=503)
        else:
            response = HttpResponse(render_to_string("503.html", {"message": message}), status=503)
        response["Retry-After"] = "5"
        return response


class BadInputMiddleware:
    """Refuse, with a 400, input that no view can use and that would otherwise surface as a
    500 deep inside a query.

    - A NUL character in a query-string parameter or a form field: PostgreSQL text cannot
      hold it, so a filter on it (every admin changelist filter and search, the pages' own
      filters) failed with "A string literal cannot contain NUL characters". Checked once
      here rather than in every view. Form bodies of the API are left to DRF, whose string
      fields refuse NUL with the API's error contract.
    - An admin action posted with a selected id that is not an id of that model (Django
      filters the selection by primary key and would raise).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = _field_with_nul(request)
        if field is not None:
            return _bad_request(request, f"The parameter {field!r} contains a NUL character.", field=field)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        # Django's admin marks each of a ModelAdmin's views with the ModelAdmin itself.
        model_admin = getattr(view_func, "model_admin", None)
        if model_admin is None or request.method != "POST":
            return None
        pk_field = model_admin.model._meta.pk
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                pk_field.to_python(value)
            except ValidationError:
                return _bad_request(request, f"{value[:100]!r} is not the id of a {model_admin.model._meta.verbose_name}.")
        return None


def _field_with_nul(request: HttpRequest) -> str | None:
    sources = [request.GET]
    # The form Django parses anyway (the CSRF check reads it too); the files are not looked at.
    is_form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
    if request.method == "POST" and is_form and not request.path.startswith("/api/"):
        sources.append(request.POST)
    for data in sources:
        for key, values in data.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                return key.replace("\x00", "\\x00")
    return None


def _bad_request(request: HttpRequest, message: str, *, field: str | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        # The API's error contract (config.api_errors): detail, and the field that was wrong.
        body: dict[str, Any] = {"detail": message}
        if field is not None:
            body.update(field=field, errors={field: [message]})
        return JsonResponse(body, status=400)
    return HttpResponse(render_to_string("400.html", {"message": message}, request), status=400)
