"""Which database errors mean "another change got in the way" rather than "the database is down"."""

from __future__ import annotations

# deadlock_detected, serialization_failure, lock_not_available: PostgreSQL undid the
# transaction whole, and the same request can succeed when retried.
LOCK_CONFLICT_SQLSTATES = ("40P01", "40001", "55P03")

LOCK_CONFLICT_MESSAGE = (
    "Another change to the same items was running at that moment, so nothing was saved. Please retry."
)


def sqlstate(exc: BaseException) -> str | None:
    # psycopg2 names it pgcode, psycopg 3 sqlstate; Django chains the driver's error.
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def is_lock_conflict(exc: BaseException) -> bool:
    return sqlstate(exc) in LOCK_CONFLICT_SQLSTATES
