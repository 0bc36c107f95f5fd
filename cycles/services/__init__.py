"""Active-learning cycles: selection, retraining, statistics, simulation.

`ActiveLearningService` is the spec's facade over these functions.
"""

from cycles.services.retraining import (
    cycle_retrain_run,
    cycle_retrain_trigger,
    cycle_retry,
    job_progress,
    jobs_reconcile,
)
from cycles.services.selection import (
    PoolSpec,
    SelectionResult,
    cycle_select,
    strategy_catalog,
)
from cycles.services.selection_jobs import cycle_select_start
from cycles.services.stats import cycle_stats

__all__ = [
    "PoolSpec",
    "SelectionResult",
    "cycle_retrain_run",
    "cycle_retrain_trigger",
    "cycle_retry",
    "cycle_select",
    "cycle_select_start",
    "cycle_stats",
    "job_progress",
    "jobs_reconcile",
    "strategy_catalog",
]
