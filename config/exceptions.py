"""The one domain-error family services raise; the API maps it to 400/404/409, the UI to a message."""

from typing import Any


class ApplicationError(Exception):
    """A request that the domain refuses; `message` is safe to show to the user."""

    status_code = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    """Input is malformed or out of range (HTTP 400)."""

    status_code = 400


class NotFound(ApplicationError):
    status_code = 404


class Conflict(ApplicationError):
    """The row is in a state that forbids the operation (HTTP 409)."""

    status_code = 409


class PermissionDenied(ApplicationError):
    status_code = 403


class ServiceUnavailable(ApplicationError):
    """A backing service (Redis, a worker) is unreachable (HTTP 503)."""

    status_code = 503
