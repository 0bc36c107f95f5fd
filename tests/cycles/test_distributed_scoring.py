"""A big pool is scored in chunks shared by RQ workers; the result equals local scoring."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cycles.services import scoring
from cycles.services.selection import PoolSpec, cycle_select, pool_queryset
from mlmodels import services as model_services
from tests.conftest import worker_env
from tests.solubility import solubility_setup

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(settings, tmp_path, lead, rq_queue):  # type: ignore[no-untyped-def]
    data = solubility_setup(labeled=40, pool=80, validation=20)
    data["lead"] = lead
    return data


def test_chunked_scoring_with_a_helper_worker_equals_local_scoring(setup, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(scoring, "CHUNK_IDS", 10)  # ~10 chunks for the ~100-id pool span
    model = setup["model"]
    qs, _ = pool_queryset(model=model, pool=PoolSpec())
    local = model_services.model_score_compounds(model=model, queryset=qs)

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default"], cwd=ROOT, env=worker_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)  # let the worker connect before the chunks are published
        shared = scoring.pool_score_distributed(model=model, pool=PoolSpec(), queryset=qs, helpers=1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    order = np.argsort(shared.ids)
    assert np.array_equal(shared.ids[order], local.ids)
    assert np.allclose(shared.mean[order], local.mean)
    assert np.allclose(shared.std[order], local.std)
    assert np.allclose(shared.applicability[order], local.applicability)
    assert np.array_equal(shared.fingerprints[order], local.fingerprints)


def test_a_distributed_selection_picks_the_same_batch(setup, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(scoring, "CHUNK_IDS", 25)
    kwargs = {"model": setup["model"], "user": setup["lead"], "strategy": "uncertainty", "batch_size": 10, "preview": True}
    local = cycle_select(**kwargs, distributed=False)
    shared = cycle_select(**kwargs, distributed=True, helpers=0)
    assert [c.compound.pk for c in shared.candidates] == [c.compound.pk for c in local.candidates]
    assert shared.pool_size == local.pool_size


def test_a_design_over_a_big_pools_most_uncertain_picks_the_same_batch_when_shared(setup, monkeypatch):  # type: ignore[no-untyped-def]
    from cycles.services import selection

    monkeypatch.setattr(scoring, "CHUNK_IDS", 25)
    monkeypatch.setattr(selection, "FEATURE_POOL_CAP", 30)
    kwargs = {"model": setup["model"], "user": setup["lead"], "strategy": "variance_reduction", "batch_size": 5,
              "params": {"target": "validation", "ensemble_weight": 4.0}, "random_state": 0, "preview": True}
    local = cycle_select(**kwargs, distributed=False)
    shared = cycle_select(**kwargs, distributed=True, helpers=0)
    assert shared.params["pool_sample_by"] == local.params["pool_sample_by"] == "uncertainty"
    assert shared.pool_size == local.pool_size == 30
    assert [c.compound.pk for c in shared.candidates] == [c.compound.pk for c in local.candidates]


def test_a_distributed_selection_within_a_series_picks_the_same_batch(setup, monkeypatch):  # type: ignore[no-untyped-def]
    """The helpers get the matched ids, not the pattern: same pool, same batch, no rescans."""
    monkeypatch.setattr(scoring, "CHUNK_IDS", 25)
    kwargs = {"model": setup["model"], "user": setup["lead"], "strategy": "uncertainty", "batch_size": 5,
              "preview": True, "pool": PoolSpec(substructure="c1ccc2ccccc2c1")}
    local = cycle_select(**kwargs, distributed=False)
    shared = cycle_select(**kwargs, distributed=True, helpers=0)
    assert [c.compound.pk for c in shared.candidates] == [c.compound.pk for c in local.candidates]
    assert shared.pool_size == local.pool_size < pool_queryset(model=setup["model"], pool=PoolSpec())[0].count()


@pytest.mark.parametrize("helpers", [0, 1])
def test_a_big_pool_is_shared_only_with_configured_helpers(setup, settings, rq_queue, monkeypatch, helpers):  # type: ignore[no-untyped-def]
    """Helpers on the selecting machine only compete for its cores (BENCHMARKS.md), so a big
    pool goes to RQ helper jobs only when CHEMLOOP_SCORING_HELPERS names some; either way
    the batch is the one the selecting process alone picks."""
    from cycles.services import selection

    settings.JOBS_IN_PROCESS = False
    settings.CHEMLOOP_SCORING_HELPERS = helpers
    monkeypatch.setattr(selection, "DISTRIBUTE_ABOVE", 10)  # the ~80-compound pool counts as big
    monkeypatch.setattr(scoring, "CHUNK_IDS", 25)
    kwargs = {"model": setup["model"], "user": setup["lead"], "strategy": "uncertainty", "batch_size": 10, "preview": True}
    alone = cycle_select(**kwargs, distributed=False)
    assert rq_queue.count == 0
    picked = cycle_select(**kwargs)
    # No worker runs here: the selecting process scores every chunk itself, and the
    # helper job it enqueued (if any) is still waiting in the real queue.
    assert [job.func_name for job in rq_queue.jobs] == ["cycles.jobs.score_chunks"] * helpers
    assert [c.compound.pk for c in picked.candidates] == [c.compound.pk for c in alone.candidates]
