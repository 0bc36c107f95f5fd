"""Stored model features for a big pool: chunked jobs shared by N RQ workers.

    python bench/feature_backfill.py [--workers 2]
    python bench/feature_backfill.py --tile     # benchmark set-up only, see below

Enqueues `compute_features_range` jobs over every compound of the bench database
missing the default featurizer's stored vector (as an import does after commit),
runs N `rqworker --burst` processes until the queue is empty, and prints
compounds/second.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import _django

_django.jobs_to_rq()

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--tile", action="store_true",
        help="benchmark set-up only: copy the vectors already computed onto the compounds still missing "
        "them (cyclically), so the scoring benchmarks can run on a full-size pool without hours of "
        "descriptor computation; scoring time does not depend on the vector values",
    )
    args = parser.parse_args()
    _django.setup()
    if args.tile:
        tile()
        return
    import django_rq

    from compounds.models import Compound
    from mlmodels.ml.features import DEFAULT_SPEC
    from mlmodels.services import compound_features_backfill_enqueue

    django_rq.get_queue("default").empty()
    todo = Compound.objects.exclude(feature_set=DEFAULT_SPEC.name).count()
    t = time.perf_counter()
    jobs = compound_features_backfill_enqueue(spec=DEFAULT_SPEC)
    procs = [
        subprocess.Popen([sys.executable, "manage.py", "rqworker", "default", "--burst"], cwd=ROOT, env={**os.environ},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(args.workers)
    ]
    for p in procs:
        p.wait()
    elapsed = time.perf_counter() - t
    left = Compound.objects.exclude(feature_set=DEFAULT_SPEC.name).count()
    print(f"stored {DEFAULT_SPEC.name} features ({DEFAULT_SPEC.n_stored} floats) for {todo - left:,} compounds in "
          f"{jobs} jobs on {args.workers} workers: {elapsed:.0f} s → {(todo - left) / elapsed:,.0f} compounds/s "
          f"({left:,} left)")


def tile() -> None:
    from django.db import connection

    from mlmodels.ml.features import DEFAULT_SPEC
    from mlmodels.ml.physchem import load_prior

    t = time.perf_counter()
    with connection.cursor() as cur:
        # Right after a bulk import the planner has no statistics (autovacuum may be
        # off) and picks a nested loop: measured > 16 min instead of 25 s without this.
        cur.execute("ANALYZE compounds_compound")
        cur.execute(
            """
            WITH src AS (
                SELECT row_number() OVER (ORDER BY id) - 1 AS k, feature_vector, prior_columns
                FROM compounds_compound WHERE feature_set = %(spec)s AND prior_key = %(key)s
            ), n AS (SELECT count(*) AS n FROM src),
            tgt AS (
                SELECT id, row_number() OVER (ORDER BY id) - 1 AS k
                FROM compounds_compound WHERE feature_set <> %(spec)s OR prior_key <> %(key)s
            )
            UPDATE compounds_compound c SET feature_vector = src.feature_vector, feature_set = %(spec)s,
                prior_columns = src.prior_columns, prior_key = %(key)s
            FROM tgt, src, n WHERE c.id = tgt.id AND src.k = tgt.k %% n.n
            """,
            # The prior's columns go with their vectors, as the backfill job stores them.
            {"spec": DEFAULT_SPEC.name, "key": load_prior().key},
        )
        print(f"tiled stored vectors onto {cur.rowcount:,} compounds in {time.perf_counter() - t:.0f} s "
              "(benchmark set-up only)")


if __name__ == "__main__":
    main()
