"""RQ jobs of the cycles app: take ids, call one service."""

from django.db import close_old_connections

from cycles import services


def retrain_cycle(job_id: str) -> None:
    close_old_connections()
    try:
        services.cycle_retrain_run(job_id=job_id)
    finally:
        close_old_connections()


def score_chunks(token: str) -> int:
    """Helper of a distributed pool scoring: take chunks until none are left."""
    from cycles.services.scoring import score_chunks as run

    close_old_connections()
    try:
        return run(token)
    finally:
        close_old_connections()


def select_cycle(job_id: str) -> None:
    """A selection queued by `cycle_select_start` (big pools)."""
    from cycles.services.selection_jobs import cycle_select_run

    close_old_connections()
    try:
        cycle_select_run(job_id=job_id)
    finally:
        close_old_connections()
