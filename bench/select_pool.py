"""Selection on a big pool, end to end: score with the 10-member model, rank with the
default strategy, create the cycle and its queue items.

    python bench/select_pool.py [--pool-dataset "bench pool pool1m.smi"] [--batch 100] [--workers 0 1] [--pin]

Run after bench/score_pool.py (which imports the pool, trains "Bench solubility"
and stores the features). With `--workers 1` one extra `rqworker` process shares
the chunked scoring with the process running the selection (the distributed path
that lets many machines share one selection); the speed-up is printed. On one machine the
extra worker can only compete for the cores the selecting process already uses; `--pin` gives
each process its own CPU, as separate one-core machines would have.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import _django

_django.jobs_to_rq()  # the distributed path needs RQ

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pool-dataset", default="bench pool pool1m.smi")
    parser.add_argument("--model", default="Bench solubility")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--strategy", default=None, help="default: the model-improvement preset's strategy")
    parser.add_argument(
        "--pin", action="store_true",
        help="emulate one-core machines on this one: this process on the first CPU, worker i on the next "
        "(taskset); PostgreSQL and Redis are not pinned, as a shared database server would not be",
    )
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin:
        os.sched_setaffinity(0, {cpus[0]})
    _django.setup()
    import django_rq
    from django.contrib.auth.models import Group, User

    from compounds.models import Dataset
    from cycles.models import ActiveLearningCycle
    from cycles.services.selection import PoolSpec, cycle_select
    from labeling.models import LabelQueueItem
    from mlmodels.ml import presets
    from mlmodels.models import MLModel

    strategy = args.strategy or presets.MODEL_IMPROVEMENT["strategy"]
    params = presets.MODEL_IMPROVEMENT["params"] if args.strategy is None else {}
    model = MLModel.objects.get(name=args.model, status="active")
    dataset = Dataset.objects.get(name=args.pool_dataset)
    pool = PoolSpec(kind="dataset", dataset_id=dataset.pk)
    lead, _ = User.objects.get_or_create(username="bench-select-lead")
    lead.groups.add(Group.objects.get_or_create(name="lead")[0])
    django_rq.get_queue("default").empty()
    timings = {}
    for workers in args.workers:
        pinned = (lambda i: ["taskset", "-c", str(cpus[(i + 1) % len(cpus)])]) if args.pin else (lambda i: [])
        procs = [
            subprocess.Popen([*pinned(i), sys.executable, "manage.py", "rqworker", "default"], cwd=ROOT,
                             env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i in range(workers)
        ]
        try:
            time.sleep(5 if workers else 0)
            t = time.perf_counter()
            result = cycle_select(model=model, user=lead, strategy=strategy, params=params, batch_size=args.batch,
                                  pool=pool, random_state=0, distributed=workers > 0, helpers=workers)
            elapsed = time.perf_counter() - t
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=30)
        timings[workers] = elapsed
        n_items = LabelQueueItem.objects.filter(cycle=result.cycle).count()
        who = f"this process + {workers} worker(s)" if workers else "one process"
        if args.pin:
            who += ", one CPU each"
        print(f"selection ({who}): pool "
              f"{result.pool_size:,} compounds, strategy {strategy}, {n_items} queue items in cycle "
              f"{result.cycle.cycle_number} → {elapsed:.1f} s")
        # Put the pool back as it was for the next run.
        LabelQueueItem.objects.filter(cycle=result.cycle).delete()
        ActiveLearningCycle.objects.filter(pk=result.cycle.pk).delete()
    if 0 in timings and len(timings) > 1:
        for workers, elapsed in timings.items():
            if workers:
                print(f"speed-up with {workers} extra worker(s): {timings[0] / elapsed:.2f}x")


if __name__ == "__main__":
    main()
