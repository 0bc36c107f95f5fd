"""Map domain errors onto the API's error contract."""

from typing import Any

from django.db import DatabaseError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.exceptions import ApplicationError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.message}
        if exc.extra:
            body.update(exc.extra)
        return Response(body, status=exc.status_code)
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
    return drf_exception_handler(exc, context)
