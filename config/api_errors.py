"""The API's error contract: every error body is JSON with a human `detail`.

Shape (documented in the OpenAPI schema as `Error`):

    {"detail": "value is not numeric", "field": "value", "errors": {"value": ["value is not numeric"]}}

`detail` is always present. For a bad payload (400) `field` names the first
offending field and `errors` maps every offending field to its messages; DRF
serializer errors and domain `ValidationFailed` errors are rendered the same
way. Domain errors may add keys of their own (`status`, `new_labels`,
`pool_errors`).

Status codes: 400 bad payload, 401 no/invalid credentials, 403 wrong role,
404 unknown (or malformed) id, 409 state conflict, 413 upload too large,
503 Redis or the database unreachable.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, OperationalError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.db_errors import LOCK_CONFLICT_MESSAGE, is_lock_conflict
from config.exceptions import ApplicationError, NotFound

# Postgres bigint: larger ids cannot exist, so they are "not found", never a database error.
MAX_ID = 2**63 - 1


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "too_large"


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested serializer errors as dotted paths: {"pool": {"dataset_id": [..]}} → {"pool.dataset_id": [..]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list) and any(isinstance(v, (dict, list)) for v in detail):
        out = {}
        for i, value in enumerate(detail):
            if value:
                out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
        return out
    messages = [str(m) for m in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or "non_field_errors": messages}


def _field_errors_body(detail: Any) -> dict[str, Any]:
    """DRF's `{field: [msg]}` (or a bare list) as `{"detail", "field", "errors"}`."""
    errors = _flatten(detail)
    field, messages = next(iter(errors.items()), ("non_field_errors", ["Invalid input."]))
    message = messages[0] if messages else "Invalid input."
    body: dict[str, Any] = {"detail": message if field == "non_field_errors" else f"{field}: {message}"}
    if field != "non_field_errors":
        body["field"] = field
    body["errors"] = errors
    return body


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.message}
        body.update(exc.extra)
        field = exc.extra.get("field")
        if exc.status_code == status.HTTP_400_BAD_REQUEST and field:
            body["errors"] = {field: [exc.message]}
        return Response(body, status=exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        return Response(_field_errors_body(exc.detail), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer is an HTML 400 page; the contract says a JSON 413.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        return Response(
            {"detail": f"The request body is larger than {limit} MB; send fewer rows per request "
             "(files go to /api/compounds/import/)."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DjangoValidationError):
        # A value the ORM refused (e.g. a malformed UUID in a filter): the client's fault.
        return Response({"detail": "; ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, OperationalError) and is_lock_conflict(exc):
        # PostgreSQL undid the transaction for another change to the same rows: a retry works.
        return Response({"detail": LOCK_CONFLICT_MESSAGE}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, OperationalError):
        # A dropped database connection: say so cleanly instead of a 500 page.
        return Response(
            {"detail": "The database is unavailable; retry shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, DatabaseError):
        return Response(
            {"detail": "The request could not be stored; nothing was written."},
            status=status.HTTP_409_CONFLICT,
        )
    if _is_redis_down(exc):
        return Response(
            {"detail": "The job queue (Redis) is unreachable; retry shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    # Http404, PermissionDenied, NotAuthenticated, ParseError, ...: DRF's own mapping.
    return drf_exception_handler(exc, context)


def _is_redis_down(exc: Exception) -> bool:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency
        return False
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError))


# --- Parsing ids from the path ------------------------------------------------------
# Path ids are captured as strings so a malformed one reaches the view and gets the
# JSON 404 of the contract instead of Django's HTML 404 page.


def parse_int_id(value: Any, *, what: str = "object") -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise NotFound(f"No such {what}.") from None
    if not 1 <= number <= MAX_ID:
        raise NotFound(f"No such {what}.")
    return number


def parse_uuid(value: Any, *, what: str = "object") -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(f"No such {what}.") from None


# --- Schema ------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error response (see the module docstring)."""

    detail = serializers.CharField(help_text="What went wrong, safe to show to a user.")
    field = serializers.CharField(
        required=False, help_text='The first offending field of a 400; nested fields are dotted ("pool.dataset_id").'
    )
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Every offending field with its messages (400 only).",
    )


_DESCRIPTIONS = {
    400: "Bad payload or parameters; `field` names the offending field.",
    401: "No or invalid credentials (send `Authorization: Token <key>` or a session cookie).",
    403: "Your role does not allow this.",
    404: "No such object (unknown or malformed id).",
    409: "The object is in a state that forbids this (e.g. labeled twice, already training).",
    413: "The upload exceeds the size limit.",
    503: "Redis or the database is unreachable; nothing was changed.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error codes; 401 and 403 are always included."""
    wanted = sorted({401, 403, *codes})
    return {code: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[code]) for code in wanted}
